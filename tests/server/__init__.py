"""Tests of facesearch.server (a package, so that its conftest is ``server.conftest``)."""
