"""The desktop launcher, AppStream metainfo, systemd unit and icons are valid and agree."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import app
import resources
from app.cli import CONSOLE_GROUP, build_parser, console_entry_points

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
DESKTOP_FILE = PACKAGING / f"{resources.APP_ID}.desktop"
METAINFO_FILE = PACKAGING / f"{resources.APP_ID}.metainfo.xml"
UNIT_FILE = PACKAGING / "postroom.service"
SYSUSERS_FILE = PACKAGING / "postroom.sysusers.conf"

# The README's set-up installs these Debian packages; without them the check cannot run.
DESKTOP_FILE_VALIDATE = shutil.which("desktop-file-validate")
APPSTREAMCLI = shutil.which("appstreamcli")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SYSTEMD_UNITS = Path("/usr/lib/systemd/system")

needs_desktop_file_validate = pytest.mark.skipif(
    DESKTOP_FILE_VALIDATE is None,
    reason="desktop-file-validate is not installed (Debian package desktop-file-utils)",
)
needs_appstreamcli = pytest.mark.skipif(
    APPSTREAMCLI is None, reason="appstreamcli is not installed (Debian package appstream)"
)


def run(*command: str | os.PathLike[str], env: dict[str, str] | None = None) -> str:
    """Run a tool; fail the test with its output unless it exits 0. Returns its output."""
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{Path(command[0]).name} exited {done.returncode}:\n{output}"
    return output


def read_ini(path: Path) -> configparser.ConfigParser:
    """A .desktop or systemd unit file's sections (a repeated unit key keeps its last value)."""
    parser = configparser.ConfigParser(interpolation=None, strict=path.suffix == ".desktop")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser


def cli_knows(argv: list[str]) -> bool:
    """Whether ``postroom`` parses these arguments (False on a usage error)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


# --- the console plugs into the command -----------------------------------------------------


def test_the_console_entry_point_is_the_console_runner() -> None:
    from ui.app import run as console_run

    [point] = console_entry_points()
    assert (point.group, point.name, point.value) == (CONSOLE_GROUP, "qt", "ui.app:run")
    assert point.load() is console_run


# Runs `postroom` without a command with the group empty, and reports which console modules
# anything tried to import: naming ``ui`` (or Qt) in the command would show up there.
WITHOUT_A_CONSOLE = """
import importlib.metadata, json, sys

real_entry_points = importlib.metadata.entry_points

def entry_points(**params):
    if params.get("group") == "postroom.console":
        return importlib.metadata.EntryPoints(())
    return real_entry_points(**params)

importlib.metadata.entry_points = entry_points
tried = []

class RefuseTheConsole:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ui", "PySide6", "shiboken6"):
            tried.append(name)
            raise ModuleNotFoundError(f"{name} is hidden by the test", name=name)
        return None

sys.meta_path.insert(0, RefuseTheConsole())
import app.cli
status = app.cli.main(sys.argv[1:])
print(json.dumps({"status": status, "tried": tried}))
"""


def test_without_a_console_postroom_says_so_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_A_CONSOLE, "--data-dir", str(tmp_path / "data")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(done.stdout) == {"status": 1, "tried": []}, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("postroom: No console is installed"), line
    assert CONSOLE_GROUP in line and "./run console" in line
    assert not (tmp_path / "data").exists(), "nothing was created"


def test_without_a_console_the_commands_still_work(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_A_CONSOLE, "--data-dir", str(tmp_path), "smtp", "show"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    *shown, last = done.stdout.splitlines()
    assert json.loads(last) == {"status": 0, "tried": []}, done.stderr
    assert any("serve: not running" in line for line in shown)


# --- the .desktop launcher -------------------------------------------------------------------


@needs_desktop_file_validate
def test_desktop_file_is_valid() -> None:
    output = run(DESKTOP_FILE_VALIDATE or "desktop-file-validate", DESKTOP_FILE)
    assert output.strip() == "", f"desktop-file-validate has hints or warnings:\n{output}"


def test_desktop_file_names_the_console_window_and_icon() -> None:
    entry = read_ini(DESKTOP_FILE)["Desktop Entry"]
    assert entry["StartupWMClass"] == resources.APP_NAME
    assert entry["Icon"] == resources.APP_ID
    assert entry["Exec"] == "postroom"
    assert "Email" in entry["Categories"].split(";")


def test_desktop_action_opens_a_chosen_data_directory() -> None:
    desktop = read_ini(DESKTOP_FILE)
    actions = [name for name in desktop["Desktop Entry"]["Actions"].split(";") if name]
    assert actions == ["choose-data-dir"]
    argv = shlex.split(desktop["Desktop Action choose-data-dir"]["Exec"])
    assert argv == ["postroom", "--choose-data-dir"]
    assert cli_knows(argv[1:])


# --- AppStream metainfo ----------------------------------------------------------------------


@needs_appstreamcli
def test_metainfo_is_valid() -> None:
    run(APPSTREAMCLI or "appstreamcli", "validate", "--no-net", "--explain", METAINFO_FILE)


def test_metainfo_describes_this_release_and_launcher() -> None:
    component = ET.parse(METAINFO_FILE).getroot()
    assert component.findtext("id") == resources.APP_ID
    assert component.findtext("launchable") == DESKTOP_FILE.name
    newest = component.find("releases/release")
    assert newest is not None
    assert newest.get("version") == app.__version__, "add a <release> for the new version"


@needs_appstreamcli
@needs_desktop_file_validate
def test_installed_tree_is_valid(tmp_path: Path) -> None:
    """The install script lays out launcher, metainfo and icons as desktops look for them."""
    env = {**os.environ, "DESTDIR": str(tmp_path)}
    run("sh", PACKAGING / "install-desktop-files.sh", "/usr", env=env)
    share = tmp_path / "usr/share"
    run(APPSTREAMCLI or "appstreamcli", "validate-tree", "--no-net", tmp_path)
    installed_launcher = share / "applications" / DESKTOP_FILE.name
    run(DESKTOP_FILE_VALIDATE or "desktop-file-validate", installed_launcher)
    icons = share / "icons/hicolor"
    assert (icons / f"scalable/apps/{resources.APP_ID}.svg").is_file()
    for size in resources.APP_ICON_SIZES:
        assert (icons / f"{size}x{size}/apps/{resources.APP_ID}.png").is_file()


# --- the systemd unit ------------------------------------------------------------------------


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (no systemd)")
@pytest.mark.skipif(
    not (SYSTEMD_UNITS / "sysinit.target").is_file(),
    reason="systemd's own units are not installed (/usr/lib/systemd/system), so the unit's "
    "dependencies cannot be resolved",
)
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts the unit, in a root where ExecStart's program exists."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEMD_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT_FILE, root / "etc/systemd/system" / UNIT_FILE.name)
    program = shlex.split(read_ini(UNIT_FILE)["Service"]["ExecStart"])[0]
    stand_in = root / program.lstrip("/")
    stand_in.parent.mkdir(parents=True)
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    # Warnings (unknown keys, bad values) go to the console only when asked to.
    env = {**os.environ, "SYSTEMD_LOG_TARGET": "console", "SYSTEMD_LOG_LEVEL": "notice"}
    output = run(
        SYSTEMD_ANALYZE or "systemd-analyze", "verify", f"--root={root}", UNIT_FILE.name, env=env
    )
    assert output.strip() == "", f"systemd-analyze verify complained:\n{output}"


def test_systemd_unit_binds_port_25_as_an_unprivileged_user() -> None:
    service = read_ini(UNIT_FILE)["Service"]
    assert service["User"] == "postroom"
    assert service["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"
    assert service["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    argv = shlex.split(service["ExecStart"])
    assert argv[argv.index("--listen") + 1].endswith(":25")
    assert argv[argv.index("--data-dir") + 1] == f"/var/lib/{service['StateDirectory']}"
    sysusers = SYSUSERS_FILE.read_text(encoding="utf-8").splitlines()
    assert any(line.split()[:2] == ["u", "postroom"] for line in sysusers if line.strip())


def test_systemd_unit_command_line_is_one_postroom_accepts() -> None:
    argv = shlex.split(read_ini(UNIT_FILE)["Service"]["ExecStart"])[1:]
    assert cli_knows(argv), f"postroom refuses the unit's arguments: {argv}"


# --- icons -----------------------------------------------------------------------------------


def test_icon_files_are_exactly_the_listed_names() -> None:
    folder = ROOT / "resources" / "icons"
    assert sorted(p.stem for p in folder.glob("*.svg")) == sorted(resources.ICON_NAMES)
    assert len(set(resources.ICON_NAMES)) == len(resources.ICON_NAMES)


@pytest.mark.parametrize("name", resources.ICON_NAMES)
def test_icon_is_a_16px_grid_svg(name: str) -> None:
    svg = ET.fromstring(resources.icon_bytes(name))
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.get("viewBox") == "0 0 16 16"
    # Text would depend on the fonts of the machine.
    assert svg.find(".//{http://www.w3.org/2000/svg}text") is None


def test_icon_loads_as_a_qicon(qapp: object) -> None:
    from ui.icons import app_icon, icon

    for name in resources.ICON_NAMES:
        loaded = icon(name)
        assert not loaded.isNull(), name
        image = loaded.pixmap(16, 16).toImage()
        assert not image.isNull(), name
        opaque = sum(image.pixelColor(x, y).alpha() > 0 for x in range(16) for y in range(16))
        assert opaque > 16, f"icon {name} renders (nearly) empty"
    assert icon("user") is icon("user"), "icons are made once"
    assert not app_icon().isNull()


def test_unknown_icon_is_refused_with_the_known_names() -> None:
    with pytest.raises(KeyError, match="no icon named 'mailboxes'.*mailbox-store"):
        resources.icon_path("mailboxes")


def test_app_icon_pngs_have_their_sizes() -> None:
    for size in resources.APP_ICON_SIZES:
        header = resources.app_icon_path(size).read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
        assert (width, height) == (size, size)
    assert resources.app_icon_path().suffix == ".svg"
    with pytest.raises(KeyError, match="no 20 px application icon"):
        resources.app_icon_path(20)
