from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "smartsplat_dist" / "examples"


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A shipped 384x256 example photo, [256, 384, 3] uint8."""
    with Image.open(EXAMPLES / "Bamboo.png") as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
