"""``--with-janus``: the same steps against Janus Gateway (videocall plugin, recording on).

Janus gathers no loopback ICE candidates, so Janus and the load generator run in a network
namespace whose veth carries an address that exists only there (10.77.0.1/32; a 127.x
address on the veth makes libnice's sends fail), with ``ice_enforce_list`` set to that
interface, no STUN, the HTTP transport on the namespace's 127.0.0.1 and only the videocall
plugin and the HTTP transport loaded. Janus comes from Debian (``apt-get install janus
janus-tools``); it is installed when missing and the user may. Whatever stops Janus from
running is reported, and the benchmark goes on without it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripts.benchcalls.procstat import cpu_seconds, rss_kib
from scripts.benchcalls.runner import (
    IDLE_SAMPLE_S,
    REPO_ROOT,
    SERVER_STOP_TIMEOUT_S,
    Pinning,
    StepResult,
)
from scripts.benchcalls.world import BenchCall

NETNS = "vvbench"
VETH, VETH_PEER = "vvb0", "vvb1"
ADDRESS = "10.77.0.1"
HTTP_PORT = 8088
KEEP_PLUGINS = {"libjanus_videocall.so"}
KEEP_TRANSPORTS = {"libjanus_http.so"}


class JanusUnavailable(RuntimeError):
    """Janus cannot run here; the message says why."""


def _run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, check=False
    )


def ensure_installed() -> Path:
    """The janus binary, installed from Debian when missing."""
    found = shutil.which("janus")
    if found is None and shutil.which("apt-get") is not None:
        print("janus: installing janus janus-tools with apt-get", file=sys.stderr)
        _run("apt-get", "update", timeout=300)
        done = _run("apt-get", "install", "-y", "janus", "janus-tools", timeout=600)
        if done.returncode != 0:
            raise JanusUnavailable(f"apt-get install janus failed: {done.stderr.strip()[-300:]}")
        found = shutil.which("janus")
    if found is None:
        raise JanusUnavailable("janus is not installed (apt-get install janus janus-tools)")
    return Path(found)


def _library_dir(kind: str) -> Path:
    for candidate in Path("/usr/lib").glob(f"*/janus/{kind}"):
        return candidate
    direct = Path("/usr/lib/janus") / kind
    if direct.is_dir():
        return direct
    raise JanusUnavailable(f"no Janus {kind} folder under /usr/lib")


def setup_namespace() -> None:
    _run("ip", "netns", "del", NETNS)
    steps = [
        ("ip", "netns", "add", NETNS),
        ("ip", "-n", NETNS, "link", "set", "lo", "up"),
        ("ip", "-n", NETNS, "link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER),
        ("ip", "-n", NETNS, "addr", "add", f"{ADDRESS}/32", "dev", VETH),
        ("ip", "-n", NETNS, "link", "set", VETH, "up"),
        ("ip", "-n", NETNS, "link", "set", VETH_PEER, "up"),
    ]
    for step in steps:
        done = _run(*step)
        if done.returncode != 0:
            raise JanusUnavailable(f"{' '.join(step)}: {done.stderr.strip()}")


def teardown_namespace() -> None:
    _run("ip", "netns", "del", NETNS)


def write_config(config_dir: Path) -> None:
    """janus.jcfg and the HTTP transport's and videocall plugin's configuration."""
    config_dir.mkdir(parents=True, exist_ok=True)
    plugins, transports = _library_dir("plugins"), _library_dir("transports")
    disabled_plugins = sorted(p.name for p in plugins.glob("*.so") if p.name not in KEEP_PLUGINS)
    disabled_transports = sorted(
        t.name for t in transports.glob("*.so") if t.name not in KEEP_TRANSPORTS
    )
    loggers = [p.name for p in _optional_dir("loggers").glob("*.so")]
    events = [p.name for p in _optional_dir("events").glob("*.so")]
    (config_dir / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{config_dir}"
    plugins_folder = "{plugins}"
    transports_folder = "{transports}"
    debug_level = 3
    session_timeout = 120
}}
media: {{
    rtp_port_range = "20000-40000"
}}
nat: {{
    ice_enforce_list = "{VETH}"
    ignore_mdns = true
}}
plugins: {{
    disable = "{",".join(disabled_plugins)}"
}}
transports: {{
    disable = "{",".join(disabled_transports)}"
}}
loggers: {{
    disable = "{",".join(loggers)}"
}}
events: {{
    broadcast = false
    disable = "{",".join(events)}"
}}
"""
    )
    (config_dir / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    base_path = "/janus"
    http = true
    port = {HTTP_PORT}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
"""
    )
    (config_dir / "janus.plugin.videocall.jcfg").write_text("general: {\n}\n")


def _optional_dir(kind: str) -> Path:
    try:
        return _library_dir(kind)
    except JanusUnavailable:
        return Path("/nonexistent")


def _janus_step(
    janus: Path, n: int, *, pinning: Pinning, step_dir: Path, config_dir: Path, window_s: float
) -> StepResult:
    result = StepResult("janus", n)
    record_dir = step_dir / "recordings"
    record_dir.mkdir(parents=True, exist_ok=True)
    log = (step_dir / "janus.log").open("w")
    command = ["ip", "netns", "exec", NETNS, *Pinning.wrap(pinning.server, [str(janus)])]
    process = subprocess.Popen(
        [*command, "-F", str(config_dir), "-C", str(config_dir / "janus.jcfg")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(2.0)  # ip netns exec and taskset exec Janus itself: its pid is this one
        if process.poll() is not None:
            raise JanusUnavailable(f"janus exited with {process.returncode} (see janus.log)")
        cpu0 = cpu_seconds(process.pid)
        time.sleep(IDLE_SAMPLE_S)
        result.idle_cpu_pct = 100 * (cpu_seconds(process.pid) - cpu0) / IDLE_SAMPLE_S
        result.idle_rss_kib = rss_kib(process.pid)
        plan_path = step_dir / "plan.json"
        plan_path.write_text(
            json.dumps(
                {
                    "server_url": "",
                    "server_pid": process.pid,
                    "calls": [BenchCall(i, "", "").to_json() for i in range(n)],
                    "officer_email": "",
                    "officer_password": "",
                    "officer_totp_secret": "",
                    "monitor_every": 0,
                    "warmup_s": 3.0 if window_s >= 10 else 1.0,
                    "window_s": window_s,
                    "mode": "janus",
                    "janus_url": f"http://127.0.0.1:{HTTP_PORT}/janus",
                    "record_prefix": str(record_dir / "call"),
                    "ice_host": ADDRESS,
                }
            )
        )
        load = Pinning.wrap(
            pinning.load, [sys.executable, "-m", "scripts.benchcalls.loadgen", str(plan_path)]
        )
        with (step_dir / "loadgen.log").open("w") as load_log:
            done = subprocess.run(
                ["ip", "netns", "exec", NETNS, *load],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=load_log,
                text=True,
                timeout=window_s + 240,
                check=False,
            )
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            result.error = f"load generator exited with {done.returncode}"
        else:
            result.figures = json.loads(lines[-1])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
    return result


def run_janus(
    steps: tuple[int, ...], *, pinning: Pinning, work_dir: Path, window_s: float
) -> tuple[list[StepResult], str | None]:
    """Janus at each N until it falls behind; ([], why) when Janus cannot run here."""
    from scripts.benchcalls.report import held

    results: list[StepResult] = []
    try:
        janus = ensure_installed()
        config_dir = work_dir / "janus-config"
        write_config(config_dir)
        setup_namespace()
    except (JanusUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        return [], f"not measured: {exc}"
    try:
        for n in steps:
            step_dir = work_dir / f"janus-{n}"
            step_dir.mkdir(parents=True, exist_ok=True)
            print(f"janus: {n} calls", file=sys.stderr)
            try:
                step = _janus_step(
                    janus,
                    n,
                    pinning=pinning,
                    step_dir=step_dir,
                    config_dir=config_dir,
                    window_s=window_s,
                )
            except (JanusUnavailable, OSError, subprocess.TimeoutExpired) as exc:
                return results, f"stopped: {exc}"
            results.append(step)
            if step.error is not None or not held(step, results[0]):
                break
    finally:
        teardown_namespace()
    note = None if results and results[0].figures else "Janus ran but no call connected"
    return results, note
