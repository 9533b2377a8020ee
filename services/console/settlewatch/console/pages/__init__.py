"""One module per page of the console (SPEC §15), each an APIRouter."""
