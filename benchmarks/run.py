"""Run every benchmark in this folder (``make bench``). Each prints its figures as ratios to a floor."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

here = Path(__file__).parent
sys.path.insert(0, str(here.parent))
for path in sorted(here.glob("bench_*.py")):
    print(f"== {path.stem}")
    sys.argv = [str(path)]
    runpy.run_path(str(path), run_name="__main__")
