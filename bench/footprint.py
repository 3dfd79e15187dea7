"""What installing tracemend costs a production image and an unrelated project's test runs.

Run: ``python bench/footprint.py [--runs 21] [--workdir DIR]`` (a few minutes: it builds three virtualenvs
with pip, from the package index, and installs this checkout into one of them; with ``--workdir`` they are
kept there and reused, this checkout reinstalled).

- install: a fresh virtualenv after ``pip install <this checkout>`` (no extras), against an empty one
  built the same way: the packages added (``pip list``) and the size they add to site-packages (files
  as installed, bytecode included).
- pytest: an unrelated project (unit tests, and its own ``tests/regressions/x.yaml`` that its own
  conftest turns into a test) run alternately with pytest + pyyaml alone and with tracemend installed
  too, ``--runs`` times each, in the same run of this script: the medians of the process's CPU time (user +
  system, less disturbed by other work on a shared machine than wall time, also printed) and the median of
  the paired ratios. Both runs must be green and collect the same tests (tracemend's plugin loads, and
  leaves the project's YAML alone). Also the import time of the entry point itself (``tracemend_pytest``,
  all that such a run loads of tracemend).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFTEST = """
import pytest, yaml


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".yaml" and "regressions" in file_path.parts:
        return DataFile.from_parent(parent, path=file_path)


class DataFile(pytest.File):
    def collect(self):
        data = yaml.safe_load(self.path.read_text())
        yield DataItem.from_parent(self, name=data["name"], data=data)


class DataItem(pytest.Item):
    def __init__(self, *, data, **kwargs):
        super().__init__(**kwargs)
        self.data = data

    def runtest(self):
        assert int(self.data["input"][:4]) == self.data["expected"]
"""
UNITS = "\n\n".join(
    f"def test_unit_{i}():\n    assert sum(range({i})) == {i * (i - 1) // 2}" for i in range(30)
)


def sh(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True, **kwargs)


def venv(path: Path, *packages: str | Path) -> Path:
    sh(sys.executable, "-m", "venv", path)
    if packages:
        sh(path / "bin" / "pip", "install", "-q", *packages)
    return path


def site_packages(env: Path) -> Path:
    return next((env / "lib").glob("python3*/site-packages"))


def installed(env: Path) -> dict[str, int]:
    """Distribution name -> bytes of the files its RECORD lists (pip records the bytecode it compiles)."""
    root = site_packages(env)
    sizes: dict[str, int] = {}
    for record in root.glob("*.dist-info/RECORD"):
        name = record.parent.name.split("-")[0].lower().replace("_", "-")
        files = (root / line.split(",")[0] for line in record.read_text().splitlines() if line)
        sizes[name] = sum(f.stat().st_size for f in files if f.is_file())
    return sizes


def project(path: Path) -> Path:
    (path / "tests" / "regressions").mkdir(parents=True)
    (path / "pyproject.toml").write_text("[project]\nname = 'other'\nversion = '1'\n")
    (path / "tests" / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (path / "tests" / "regressions" / "x.yaml").write_text(
        "name: parses dates\ninput: '2024-01-02'\nexpected: 2024\n"
    )
    (path / "tests" / "test_units.py").write_text(UNITS + "\n")
    return path


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_pytest(env: Path, where: Path) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, pytest's summary without its timing) of one green run."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEMEND_", "PYTEST_"))}
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=where,
        env=clean,
        capture_output=True,
        text=True,
    )
    wall, cpu = time.perf_counter() - started, _cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"pytest failed in {env.name}:\n{done.stdout}\n{done.stderr}")
    return cpu, wall, re.sub(r" in [0-9.]+s.*", "", done.stdout.strip().splitlines()[-1])


def plugin_import_ms(env: Path, runs: int = 9) -> float:
    code = (
        "import time, pytest; t = time.perf_counter(); import tracemend_pytest; "
        "print((time.perf_counter() - t) * 1000)"
    )
    python = env / "bin" / "python"
    return statistics.median(float(sh(python, "-c", code).stdout) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--workdir", type=Path, default=None, help="keep (and reuse) the virtualenvs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracemend-footprint-") as tmp:
        base = args.workdir or Path(tmp) / "kept"
        base.mkdir(parents=True, exist_ok=True)
        print("virtualenvs (pip, from the package index)…", flush=True)
        fresh = Path(tmp)
        empty = installed(venv(fresh / "empty"))
        core = installed(venv(fresh / "core", REPO))
        added = {name: size for name, size in core.items() if name not in empty}
        print(
            f"\npip install tracemend (no extras): {len(added)} packages, {sum(added.values()) / 1e6:.1f} MB"
        )
        for name, size in sorted(added.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<22}{size / 1e6:8.2f} MB")
        print(f"  (the empty virtualenv it is measured against holds: {', '.join(sorted(empty))})")
        assert "opik" not in core, "opik is an extra: it must not be installed by default"

        alone, with_tm, other = base / "pytest-alone", base / "pytest-with-tracemend", base / "other"
        if not (alone / "bin" / "python").exists():
            venv(alone, "pytest", "pyyaml")
        if not (with_tm / "bin" / "python").exists():
            venv(with_tm, "pytest", "pyyaml", REPO)
        else:  # this checkout as it is now
            sh(with_tm / "bin" / "pip", "install", "-q", "--no-deps", "--force-reinstall", REPO)
        if not other.exists():
            project(other)
        assert "opik" not in installed(with_tm)
        labels = {"without tracemend": alone, "with tracemend": with_tm}
        cpu: dict[str, list[float]] = {label: [] for label in labels}
        wall: dict[str, list[float]] = {label: [] for label in labels}
        summaries: dict[str, set[str]] = {label: set() for label in labels}
        for _ in range(args.runs):
            for label, env in labels.items():
                c, w, summary = run_pytest(env, other)
                cpu[label].append(c)
                wall[label].append(w)
                summaries[label].add(summary)
        header = sh(
            with_tm / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", "--co", cwd=other
        ).stdout
        print(f"\nan unrelated project's pytest run ({args.runs} runs each, alternating):")
        for label in labels:
            print(
                f"  {label:<19} CPU median {statistics.median(cpu[label]):.3f} s (min {min(cpu[label]):.3f}); "
                f"wall median {statistics.median(wall[label]):.3f} s; {', '.join(sorted(summaries[label]))}"
            )
        pairs = [b / a for a, b in zip(cpu["without tracemend"], cpu["with tracemend"], strict=True)]
        print(
            f"  ratio with/without: CPU medians {statistics.median(cpu['with tracemend']) / statistics.median(cpu['without tracemend']):.3f}, "
            f"median of paired CPU ratios {statistics.median(pairs):.3f}, wall medians "
            f"{statistics.median(wall['with tracemend']) / statistics.median(wall['without tracemend']):.3f}"
        )
        line = next((x for x in header.splitlines() if x.startswith("plugins:")), "plugins: (none)")
        print(f"  with tracemend: {line.strip()}")
        print(
            f"  same tests, same outcome both ways: {summaries['with tracemend'] == summaries['without tracemend']}"
        )
        print(
            f"  import of the plugin module (with pytest already imported): {plugin_import_ms(with_tm):.1f} ms"
        )


if __name__ == "__main__":
    main()
