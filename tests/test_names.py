import pytest

from facesearch.errors import InputError
from facesearch.names import validate_name


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("sheldon", "sheldon"),
        ("  Zoë Saldaña ", "Zoë Saldaña"),
        ("Zoe\u0308", "Zoë"),  # decomposed umlaut is normalised to NFC
        ("李雷", "李雷"),
        ("Jean-Luc O'Neill Jr.", "Jean-Luc O'Neill Jr."),
    ],
)
def test_valid_names_are_normalised(raw, expected):
    assert validate_name(raw) == expected


@pytest.mark.parametrize(
    "raw, message",
    [
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "relative path"),
        ("../etc", "path separator"),
        ("..hidden", "relative path"),
        ("", "empty"),
        ("   ", "empty"),
        ("bob\u200b", "invisible or control"),  # zero-width space
        ("\u202eevil", "invisible or control"),  # right-to-left override
        ("line\nbreak", "invisible or control"),
        ("x" * 200, "longer than"),
    ],
)
def test_bad_names_are_refused_with_a_reason(raw, message):
    with pytest.raises(InputError, match=message) as err:
        validate_name(raw)
    assert "\n" not in str(err.value)
