"""One ``APIRouter`` per resource: health, recognition (identify, verify), people, faces, info."""
