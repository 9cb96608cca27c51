"""The documentation builds with MkDocs in strict mode: every page in the navigation, no broken link or anchor."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_documentation_builds_strictly(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "user_guide" / "index.html").is_file()


def test_troubleshooting_lists_every_exit_code_of_the_plugin():
    """Every exit code a ``ccdcgan.*`` process defines (AiiDA's generic ones below 100 aside) is in the page."""
    from importlib.metadata import entry_points

    page = (Path(__file__).parents[2] / "docs" / "troubleshooting.md").read_text()
    generic = {131, 140, 150, 160}  # the Computer's, named in one sentence of the page
    missing = []
    for group in ("aiida.calculations", "aiida.workflows"):
        for entry_point in entry_points(group=group):
            if not entry_point.name.startswith("ccdcgan."):
                continue
            process = entry_point.load()
            spec = process.spec() if hasattr(process, "spec") else process.process_class.spec()
            for label, code in spec.exit_codes.items():
                if code.status < 100:
                    continue
                if code.status in generic:
                    assert str(code.status) in page
                elif f"| {code.status} | `{label}` |" not in page:
                    missing.append(f"{entry_point.name} {code.status} {label}")
    assert not missing, f"docs/troubleshooting.md lacks: {missing}"
