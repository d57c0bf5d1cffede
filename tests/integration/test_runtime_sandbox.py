"""The process runtime's walls, tested as the tenant: code run inside the very process the runtime
starts for a bot (same launcher, environment, user and working directory; `entry` swaps only
what the interpreter runs) tries to reach the platform's data, and fails. A control run without
walls shows the probe does reach it, so the failures are the walls' and not the probe's.

Also: a real bot under the walls reaches the internal API and answers a click, and pools grouped
by owner never mix sellers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astra.adapters.runtime.pooled import PooledRuntime
from astra.adapters.runtime.process import ProcessRuntime
from astra.adapters.runtime.sandbox import NOBODY, Sandbox, SandboxUnavailable
from astra.container import _unit_runtime, build_container
from astra.ports.runtime import ProcessState, RuntimeSpec
from astra.settings import Settings, SettingsError, ensure_dev_secrets
from tests.integration.runtime_contract import INVALID_TOKEN, wait_for
from tests.integration.sales_world import INSTANCE, OWNER, make_shop
from tests.pool_world import pool_world

BUYER = "111111111111111111"

pytestmark = pytest.mark.slow

if shutil.which("bwrap") is None:  # scripts/test.sh installs it; a run without it proves nothing
    pytest.fail("bubblewrap (bwrap) is not installed", pytrace=False)



def _canary() -> str:
    """A variable of the platform's own environment (as the kernel shows it in
    /proc/<pid>/environ) that no runtime is given: sought from inside."""
    given = {"PATH", "LANG", "HOME", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
             "PWD", "LC_CTYPE"}
    names = [e.split(b"=", 1)[0].decode() for e in
             Path("/proc/self/environ").read_bytes().split(b"\0") if b"=" in e]
    names = [n for n in names if n not in given and not n.startswith(("ASTRA_", "PROBE_"))]
    if "ASTRA_TEST_PORTS" in os.environ:
        return "ASTRA_TEST_PORTS="
    assert names, "the test process has an environment of its own"
    return names[0] + "="


CANARY = _canary()

# What a compromised bot would try. Each attempt records "ok" (it worked) or the error's name.
PROBE = r"""
import json, os, sys
from pathlib import Path

data = Path(os.environ["PROBE_DATA"])
instance = os.environ.get("ASTRA_INSTANCE_ID", "")
platform = int(os.environ["PROBE_PLATFORM_PID"])
canary = os.environ["PROBE_CANARY_NAME"]
out = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd(),
       "argv": sys.argv[1:]}

def attempt(name, action):
    try:
        result = action()
        out[name] = "ok" if result is None else ["ok", result]
    except Exception as exc:
        out[name] = type(exc).__name__

def write(path, text):
    path.write_text(text)  # where the store's files are: no directory is made for it

forged_order = json.dumps([{"id": "ord_forged", "status": "paid", "total_cents": 940000,
                            "net_cents": 940000, "buyer_id": "1"}])
forged_posting = json.dumps({"postings": [{"id": "pst_forged", "status": "posted",
                                           "amount_cents": 940000}]})
box = data / "instances" / instance
attempt("read_portal", lambda: len((data / "portal.json").read_bytes()) and None)
attempt("read_secrets", lambda: len((data / ".secrets.json").read_bytes()) and None)
attempt("list_data", lambda: os.listdir(data) and None)
attempt("list_instance", lambda: os.listdir(box) and None)
attempt("forge_orders", lambda: write(box / "orders.json", forged_order))
attempt("forge_postings", lambda: write(box / "instance.json", forged_posting))
attempt("drop_file", lambda: write(box / "forged-order.json", forged_order))
attempt("platform_environ", lambda: len(Path(f"/proc/{platform}/environ").read_bytes()) and None)
attempt("signal_platform", lambda: os.kill(platform, 0))
attempt("write_source", lambda: write(Path(os.__file__).parent / "forged.py", "x = 1"))

def seen_canary():
    hits = [k for k in os.environ if canary in k]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                if any(e.startswith(canary.encode()) for e in entries):
                    hits.append(pid)
            except OSError:
                pass
    return hits

out["canary_seen"] = seen_canary()

def store_files():
    found = []
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
        found += [os.path.join(root, f) for f in files
                  if f in ("portal.json", ".secrets.json", "orders.json")]
    return found

out["store_files_visible"] = store_files()
print("PROBE " + json.dumps(out), flush=True)
"""


def _probe_spec(data_dir: Path, instance_id: str, owner: str = OWNER) -> RuntimeSpec:
    environment = {
        "PROBE_DATA": str(data_dir.resolve()),
        "PROBE_PLATFORM_PID": str(os.getpid()),
        "PROBE_CANARY_NAME": CANARY,
    }
    return RuntimeSpec(instance_id, owner, INVALID_TOKEN, "rt_probe_credential", environment)


def _run_probe(runtime: ProcessRuntime, spec: RuntimeSpec) -> dict[str, Any]:
    runtime.ensure(spec)
    lines = wait_for(
        lambda: runtime.logs(spec.instance_id, 50),
        lambda lines: any(line.startswith("PROBE ") for line in lines),  # type: ignore[union-attr]
        60, "the probe's report",
    )
    line = next(line for line in lines if line.startswith("PROBE "))  # type: ignore[union-attr]
    return json.loads(line.removeprefix("PROBE "))


def _snapshot(data_dir: Path, instance_id: str) -> dict[str, str]:
    """Every file under the data directory with its content's hash, but the two the platform
    itself writes for the runtime (its log and pid file)."""
    own = {data_dir / "instances" / instance_id / n for n in ("runtime.log", "runtime.pid")}
    return {
        str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data_dir.rglob("*")) if p.is_file() and p not in own
    }


@pytest.fixture
def shop_dir(tmp_path: Path) -> Path:
    """A JSON-store platform whose seller has sold once (a balance to protect)."""
    data = tmp_path / "data"
    shop = make_shop(data, keys=3)
    shop.sales.add_item(INSTANCE, BUYER, shop.product_id, shop.variant_id, 1)
    order = shop.sales.checkout(INSTANCE, BUYER)
    shop.settlement.confirm_payment(INSTANCE, order.id, amount_cents=order.total_cents,
                                    payment_id="mp-honest-1")
    assert shop.wallet.balance(OWNER) > 0
    return data


def _sandboxed(data_dir: Path) -> ProcessRuntime:
    runtime = ProcessRuntime(data_dir, restart_limit=0, entry=("-c", PROBE))
    assert runtime.sandbox is not None, "bwrap works on this machine: the runtime must use it"
    return runtime


WALLED = ("read_portal", "read_secrets", "list_data", "list_instance", "forge_orders",
          "forge_postings", "drop_file", "platform_environ", "signal_platform", "write_source")


def test_a_bot_process_reaches_none_of_the_platforms_files_or_environment(
    shop_dir: Path
) -> None:
    assert (shop_dir / ".secrets.json").is_file() and (shop_dir / "portal.json").is_file()
    before = _snapshot(shop_dir, INSTANCE)
    runtime = _sandboxed(shop_dir)
    try:
        report = _run_probe(runtime, _probe_spec(shop_dir, INSTANCE))
    finally:
        runtime.shutdown()
    failed = {name: report[name] for name in WALLED}
    assert all(result != "ok" and result[0] != "ok" for result in failed.values()), failed
    # The data directory does not exist inside: not a permission refused, an absent path.
    assert report["read_secrets"] == "FileNotFoundError", report
    assert report["list_data"] == "FileNotFoundError", report
    assert report["signal_platform"] == "ProcessLookupError", report  # another pid namespace
    assert report["write_source"] in ("OSError", "PermissionError"), report  # read-only
    assert report["canary_seen"] == [] and report["store_files_visible"] == [], report
    assert report["argv"] == ["instance", "run", INSTANCE]
    if os.geteuid() == 0:
        assert (report["uid"], report["gid"], report["groups"]) == (NOBODY, NOBODY, [])
    assert _snapshot(shop_dir, INSTANCE) == before
    assert not (shop_dir / "instances" / INSTANCE / "forged-order.json").exists()


def test_the_probe_reaches_the_data_when_there_are_no_walls(tmp_path: Path) -> None:
    """The control: the same probe without a sandbox reads the secrets and writes the forged
    files (what the walls are for), so the test above fails if the walls go."""
    data = tmp_path / "data"
    (data / "instances" / "victim").mkdir(parents=True)
    (data / ".secrets.json").write_text("{}")
    (data / "portal.json").write_text("{}")
    runtime = ProcessRuntime(data, restart_limit=0, entry=("-c", PROBE), sandbox=None)
    try:
        report = _run_probe(runtime, _probe_spec(data, "victim"))
    finally:
        runtime.shutdown()
    assert report["read_secrets"] == "ok" and report["drop_file"] == "ok", report
    assert report["forge_orders"] == "ok" and report["platform_environ"] == "ok", report
    assert str(os.getpid()) in report["canary_seen"], report
    assert (data / "instances" / "victim" / "forged-order.json").is_file()


def test_forged_orders_and_postings_credit_nothing_also_after_a_restart(
    shop_dir: Path
) -> None:
    """The attack of a bot that writes paid orders and matching postings into its instance's
    files: under the walls the files are out of its reach, and the seller's balance (read by a
    platform started afresh on the same data, as after a restart) is what it was."""
    def balances() -> tuple[int, list[str]]:
        container = build_container(ensure_dev_secrets(Settings(data_dir=shop_dir)))
        with container.store().instance(INSTANCE, write=False) as uow:
            paid = sorted(o["id"] for o in uow.orders.all() if o.get("status") == "paid")
        return container.wallet().balance(OWNER), paid

    before = balances()
    runtime = _sandboxed(shop_dir)
    try:
        report = _run_probe(runtime, _probe_spec(shop_dir, INSTANCE))
    finally:
        runtime.shutdown()
    assert report["forge_orders"] == "FileNotFoundError", report
    assert report["forge_postings"] == "FileNotFoundError", report
    assert balances() == before
    assert before[0] > 0 and len(before[1]) == 1


def test_the_platform_refuses_an_unisolated_process_runtime_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # a machine without bwrap
    with pytest.raises(SandboxUnavailable):
        Sandbox.create(tmp_path)
    production = Settings(mode="production", data_dir=tmp_path, runtime="process")
    with pytest.raises(SettingsError, match="ASTRA_PROCESS_ISOLATION=off"):
        _unit_runtime(production)
    # The operator's explicit choice, and development: unisolated, with a warning.
    opted_out = Settings(mode="production", data_dir=tmp_path, runtime="process",
                         process_isolation="off")
    assert _unit_runtime(opted_out).sandbox is None
    assert _unit_runtime(Settings(data_dir=tmp_path, runtime="process")).sandbox is None


def test_a_data_directory_inside_a_bound_tree_is_covered(tmp_path: Path) -> None:
    """A virtualenv (or a package) next to the data: the bound tree would show it, so it is
    mounted over with an empty tmpfs."""
    import subprocess
    import sys

    import astra

    package = Path(astra.__file__).resolve().parent
    assert Sandbox.create(tmp_path).hidden == ()
    covered = package / "adapters"  # stands for a data directory in a bound tree
    inside = Sandbox.create(covered)
    assert inside.hidden == (covered,)
    look = (f"import os; print(os.path.isdir({str(covered)!r}), "
            f"len(os.listdir({str(covered)!r})) if os.access({str(covered)!r}, os.R_OK) else 0)")
    done = subprocess.run(inside.command([sys.executable, "-c", look]), capture_output=True,
                          env={"PATH": "/usr/bin:/bin"}, timeout=30, check=True)
    assert done.stdout.split() == [b"True", b"0"], done
    assert any(covered.iterdir())  # outside, it has its files


# -- the honest path ----------------------------------------------------------------------------


def _bot_processes(instance_id: str) -> list[int]:
    """The interpreters running the instance's bot (not the bwrap launcher around them)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[-3:] == [b"run", instance_id.encode(), b""] and b"bwrap" not in argv[0]:
            found.append(int(entry.name))
    return found


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


async def test_a_bot_under_the_walls_reaches_the_internal_api_and_answers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    world = await pool_world(data, instances=1, buyers=1)
    shop = world.shops[0]
    runtime = ProcessRuntime(data, restart_limit=1)  # the platform's own data directory
    assert runtime.sandbox is not None
    spec = RuntimeSpec(
        shop.instance_id, "usr_pool_owner", shop.discord.bot_token,
        world.container.instances().runtime_credential(shop.instance_id),
        {"DISCORD_API_BASE": world.fleet.api_url, "ASTRA_PLATFORM_URL": world.internal_url,
         "ASTRA_LOG_FORMAT": "json"},
    )
    try:
        runtime.ensure(spec)
        await world.wait_ready([shop.instance_id], timeout=90)  # its heartbeat reached the API
        assert await shop.pick(shop.buyers[0], timeout=15) > 0  # and it answers a click
        pythons = _bot_processes(shop.instance_id)
        assert pythons, "the bot's interpreter is running"
        if os.geteuid() == 0:
            assert {_uid_of(p) for p in pythons} == {NOBODY}
        assert runtime.status(shop.instance_id).state is ProcessState.RUNNING
    finally:
        await asyncio.to_thread(runtime.shutdown)  # its drain calls the API on this loop
        await world.close()


# -- pools grouped by owner -----------------------------------------------------------------------


def _silent_spec(instance_id: str, owner: str, api: str) -> RuntimeSpec:
    return RuntimeSpec(instance_id, owner, INVALID_TOKEN, "rt_credential",
                       {"DISCORD_API_BASE": api, "ASTRA_PLATFORM_URL": api.split("/api")[0]})


@pytest.fixture
def silent_api() -> Iterator[str]:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/api/v10"
    finally:
        sock.close()


@pytest.mark.parametrize("grouping", ["owner", "environment"])
def test_pools_grouped_by_owner_never_mix_sellers(tmp_path: Path, silent_api: str,
                                                  grouping: str) -> None:
    runtime = PooledRuntime(ProcessRuntime(tmp_path / "data", restart_limit=0), pool_size=10,
                            handoff_timeout=5, grouping=grouping)  # type: ignore[arg-type]
    specs = [_silent_spec("ana-1", "usr_ana", silent_api),
             _silent_spec("ana-2", "usr_ana", silent_api),
             _silent_spec("bia-1", "usr_bia", silent_api)]
    try:
        with runtime.batch():
            for spec in specs:
                runtime.ensure(spec)
        pools = runtime.pools()
        place = {s.instance_id: runtime.placement_of(s.instance_id) for s in specs}
        if grouping == "owner":
            assert place["ana-1"] == place["ana-2"] != place["bia-1"]
            assert sorted(pools.values()) == [["ana-1", "ana-2"], ["bia-1"]]
            # A new generation (a restart) keeps the sellers apart too.
            runtime.restart("bia-1")
            assert runtime.placement_of("bia-1") not in (place["ana-1"], place["bia-1"])
            assert runtime.pools()[runtime.placement_of("bia-1")] == ["bia-1"]
        else:
            assert len(set(place.values())) == 1
        for unit_id, members in runtime.pools().items():
            # A pool's process is given its members' tokens and credentials, no one else's.
            assert _pool_members_given(tmp_path / "data", unit_id) == members
    finally:
        runtime.shutdown()


def _pool_members_given(data_dir: Path, unit_id: str) -> list[str]:
    pid_file = data_dir / "pools" / unit_id.removeprefix("pool.") / "runtime.pid"
    pid = int(wait_for(lambda: pid_file.is_file() and pid_file.read_text().strip(),
                       bool, 30, f"{unit_id}'s pid file"))  # type: ignore[arg-type]

    def given() -> bytes | None:
        # Popen returns after fork, maybe before exec: until then the environment is ours.
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if entry.startswith(b"ASTRA_POOL_MEMBERS="):
                return entry.split(b"=", 1)[1]
        return None

    members = wait_for(given, bool, 30, f"{unit_id}'s ASTRA_POOL_MEMBERS")  # type: ignore[arg-type]
    return sorted(m["id"] for m in json.loads(members))  # type: ignore[arg-type]


NOT_ROOT_PROBE = r"""
import os, subprocess, sys
from astra.adapters.runtime.sandbox import Sandbox
sandbox = Sandbox.create(sys.argv[1], python=sys.executable)
look = ("import os, sys; print(os.getuid(), os.path.exists(sys.argv[1]), "
        "os.path.exists(sys.argv[1] + '/.secrets.json'))")
done = subprocess.run(sandbox.command([sys.executable, "-c", look, sys.argv[1]]),
                      capture_output=True, text=True, check=True)
# The control: this user, outside the walls, sees the secrets file.
print(sandbox.drop_to, os.path.exists(sys.argv[1] + "/.secrets.json"), done.stdout.strip())
"""


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").is_file(),
                    reason="becoming another user needs root; the system interpreter runs it")
def test_a_platform_that_is_not_root_walls_its_bots_in_a_user_namespace(tmp_path: Path) -> None:
    """The platform as an ordinary user (nobody here, with the system interpreter: the
    sandbox module needs nothing else): bwrap makes an unprivileged user namespace, the bot
    keeps that user, and the data directory is not there."""
    import shutil
    import subprocess
    import tempfile

    import astra

    # Under /tmp itself: pytest's own directory is root's alone, which would hide it anyway.
    data = Path(tempfile.mkdtemp(prefix="astra-sandbox-"))
    # The package copied where nobody can read it: the checkout may sit under a directory only
    # root may enter (/root), wherever CI clones it.
    copy = Path(tempfile.mkdtemp(prefix="astra-source-"))
    try:
        (data / ".secrets.json").write_text("{}")
        data.chmod(0o755)
        shutil.copytree(Path(astra.__file__).resolve().parent, copy / "astra",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        source = str(copy)
        done = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "/usr/bin/python3", "-c", NOT_ROOT_PROBE, str(data)],
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": source}, capture_output=True,
            text=True, timeout=60,
        )
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(copy, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "True", str(NOBODY), "False", "False"], done.stdout


# -- stopping a walled bot ----------------------------------------------------------------------

DRAINING = r"""
import signal, sys, time
def drain(*_):
    time.sleep(1.5)  # the clicks and the delivery in hand
    print("DRAINED", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, drain)
print("SERVING", flush=True)
while True:
    time.sleep(1)
"""

STUBBORN = r"""
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("SERVING", flush=True)
while True:
    time.sleep(1)
"""


def _serving(runtime: ProcessRuntime, instance_id: str, tmp_path: Path) -> list[int]:
    runtime.ensure(RuntimeSpec(instance_id, OWNER, INVALID_TOKEN, "rt", {}))
    wait_for(lambda: runtime.logs(instance_id, 20), lambda lines: "SERVING" in lines,  # type: ignore[operator]
             60, f"{instance_id} serving")
    leader = int((tmp_path / "data" / "instances" / instance_id / "runtime.pid").read_text())
    from astra.adapters.runtime.process import _group_members

    members = _group_members(leader)
    assert len(members) >= 3  # bwrap, its init in the pid namespace, the bot
    return members


def _alive(pids: list[int]) -> list[int]:
    """Those still running (a zombie only waits to be reaped)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def test_a_stop_waits_for_the_walled_bot_to_drain(tmp_path: Path) -> None:
    """bwrap dies of SIGTERM at once; the bot behind it drains for seconds. The stop returns
    when the bot is done, not when bwrap is."""
    runtime = ProcessRuntime(tmp_path / "data", restart_limit=0, entry=("-c", DRAINING))
    assert runtime.sandbox is not None
    try:
        members = _serving(runtime, "ct-drain", tmp_path)
        started = time.monotonic()
        runtime.stop("ct-drain")
        assert time.monotonic() - started >= 1.4
        assert "DRAINED" in runtime.logs("ct-drain", 20)
        assert _alive(members) == []
        assert runtime.status("ct-drain").exit_code == 0
    finally:
        runtime.shutdown()


def test_a_walled_bot_that_ignores_the_stop_is_killed_with_its_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from astra.adapters.runtime import process

    monkeypatch.setattr(process, "STOP_TIMEOUT", 2.0)
    runtime = ProcessRuntime(tmp_path / "data", restart_limit=0, entry=("-c", STUBBORN))
    try:
        members = _serving(runtime, "ct-stubborn", tmp_path)
        runtime.stop("ct-stubborn")
        wait_for(lambda: _alive(members), lambda left: left == [], 10,
                 "the sandbox's processes to end")
    finally:
        runtime.shutdown()
