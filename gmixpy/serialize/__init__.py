"""Model and checkpoint files: see serialize/model_file.py."""
from .model_file import (
    BYTES,
    ModelFileError,
    describe,
    is_model_file,
    load,
    load_checkpoint,
    save,
    save_checkpoint,
    write_model,
)

__all__ = ["BYTES", "ModelFileError", "describe", "is_model_file", "load", "load_checkpoint", "save", "save_checkpoint",
           "write_model"]
