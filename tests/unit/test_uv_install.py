"""tools/uv_install.py: uv installs from the package sources pip is configured to use."""

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "tools" / "uv_install.py"
spec = importlib.util.spec_from_file_location("uv_install", SCRIPT)
uv_install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(uv_install)


def test_pip_sources_rank_the_environment_over_install_over_global():
    lines = [
        ":env:.default-timeout='180'",
        ":env:.find-links='/env/wheels'",
        "global.cert='/etc/ssl/certs/ca.crt'",
        "global.constraint='/etc/pip/constraints.txt'",
        "global.extra-index-url='file:///a/simple file:///b/simple'",
        "global.find-links='/global/wheels'",
        "install.find-links='/install/wheels'",
        "install.index-url='https://mirror.example/simple'",
        "global.index-url='https://ignored.example/simple'",
    ]
    assert uv_install.pip_sources(lines) == [
        *("--index-url", "https://mirror.example/simple"),
        *("--extra-index-url", "file:///a/simple", "--extra-index-url", "file:///b/simple"),
        *("--find-links", "/env/wheels"),
        *("--constraint", "/etc/pip/constraints.txt"),
    ]
    assert uv_install.pip_sources([]) == []


def pip_config(tmp_path, text: str) -> list[str]:
    config = tmp_path / "pip.conf"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = str(config)
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.splitlines()


def test_pip_sources_read_what_pip_itself_lists(tmp_path):
    lines = pip_config(
        tmp_path,
        "[global]\nextra-index-url = file:///x/simple\n    file:///y/simple\n"
        "find-links = /wheels\n[install]\nconstraint = /c.txt\n",
    )
    flags = uv_install.pip_sources(lines)
    assert flags[flags.index("--find-links") + 1] == "/wheels"
    assert flags[flags.index("--constraint") + 1] == "/c.txt"
    assert [flags[i + 1] for i, f in enumerate(flags) if f == "--extra-index-url"] == [
        "file:///x/simple",
        "file:///y/simple",
    ]


def planted_wheel(folder) -> None:
    """A one-module wheel that exists nowhere but in `folder`."""
    info = "tl_planted-1.0.dist-info"
    with zipfile.ZipFile(folder / "tl_planted-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("tl_planted.py", "ANSWER = 42\n")
        wheel.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: tl-planted\nVersion: 1.0\n"
        )
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(
            f"{info}/RECORD",
            f"tl_planted.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n",
        )


@pytest.mark.skipif(
    shutil.which("uv", path=os.path.dirname(sys.executable)) is None, reason="needs the venv's uv"
)
def test_uv_finds_a_package_only_pip_s_configured_folder_holds(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    planted_wheel(wheels)
    (tmp_path / "pip.conf").write_text(f"[global]\nfind-links = {wheels}\n")
    # A throwaway venv that sees this interpreter's pip, with the project's uv beside it.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", tmp_path / "v"], check=True
    )
    (tmp_path / "v" / "bin" / "uv").symlink_to(os.path.join(os.path.dirname(sys.executable), "uv"))
    python = tmp_path / "v" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env |= {"PIP_CONFIG_FILE": str(tmp_path / "pip.conf"), "UV_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run([python, SCRIPT, "--offline", "tl-planted"], env=env, check=True)
    found = subprocess.run(
        [python, "-c", "import tl_planted; print(tl_planted.ANSWER)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "42"
