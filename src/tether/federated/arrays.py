"""Model arrays on the wire: NumPy `.npy` bytes in base64, exact to the bit.

>>> import numpy as np
>>> sent = {"coef": np.array([[0.5, -1.25]]), "intercept": np.array([0.1])}
>>> received = decode_arrays(encode_arrays(sent))
>>> all(np.array_equal(sent[k], received[k]) for k in sent)
True
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping

import numpy as np

from tether.errors import TrainingError

__all__ = ["decode_arrays", "encode_arrays"]


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    encoded = {}
    for name, value in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(value), allow_pickle=False)
        encoded[name] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return encoded


def decode_arrays(encoded: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Arrays from a report; TrainingError when one is not a plain `.npy` array."""
    arrays = {}
    for name, text in encoded.items():
        try:
            arrays[name] = np.load(io.BytesIO(base64.b64decode(text, validate=True)),
                                   allow_pickle=False)
        except (binascii.Error, ValueError, OSError) as exc:
            raise TrainingError(f"the ServerApp sent array {name!r} that is not a .npy array "
                                f"in base64 ({exc})") from exc
    return arrays
