"""`diffusellm serve`, `worker` and `locate` as a user starts them: real processes, real HTTP on loopback;
starting with a full inbox and stopping during a worker's long poll."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import make_repo
from tests.fakes.webhook_payloads import EXAMPLES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_ID", "PRIVATE_KEY", "WEBHOOK"))}
    env.update({"DIFFUSELLM_STATE_DIR": str(tmp_path / "state"),
                "DIFFUSELLM_STORE__URL": f"sqlite:///{tmp_path / 'jobs.sqlite'}", **extra})
    return env


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
        try:
            return httpx.get(f"{url}/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError("server did not start within 60 s")


def test_serve_answers_health_metrics_and_checks_webhook_signatures(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(tmp_path, WEBHOOK_SECRET="s3cret", DIFFUSELLM_WORKER_TOKEN="tok")
    proc = subprocess.Popen([sys.executable, "-m", "diffusellm", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_healthy(url, proc).status_code == 200
        assert "diffusellm" in httpx.get(f"{url}/metrics", timeout=5).text
        body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
        forged = httpx.post(f"{url}/webhooks/github", content=body, timeout=5,
                            headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-1",
                                     "X-Hub-Signature-256": "sha256=" + "0" * 64})
        assert forged.status_code in (401, 403)
        good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        signed = httpx.post(f"{url}/webhooks/github", content=body, timeout=5,
                            headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-2",
                                     "X-Hub-Signature-256": good, "Content-Type": "application/json"})
        assert signed.status_code == 202
        claim = httpx.post(f"{url}/api/worker/claim", json={}, timeout=5)
        assert claim.status_code == 401, "the worker API needs the worker token"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_worker_against_unreachable_or_wrong_server_exits_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(tmp_path, WEBHOOK_SECRET="s3cret", DIFFUSELLM_WORKER_TOKEN="right")
    server = subprocess.Popen([sys.executable, "-m", "diffusellm", "serve", "--port", str(port),
                               "--set", "server.in_process_worker=false"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", server)
        done = subprocess.run([sys.executable, "-m", "diffusellm", "worker", "--server",
                               f"http://127.0.0.1:{port}", "--max-jobs", "1"],
                              env={**env, "DIFFUSELLM_WORKER_TOKEN": "wrong"}, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "token" in (done.stderr + done.stdout).lower()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_locate_json_shape(tmp_path: Path) -> None:
    files = {
        "shop/__init__.py": "",
        "shop/cart.py": ("def total_price(items: list[float]) -> float:\n"
                         "    \"\"\"Sum the prices in the cart.\"\"\"\n    return sum(items)\n"),
        "shop/users.py": "def login(name: str) -> bool:\n    \"\"\"Sign a user in.\"\"\"\n    return bool(name)\n",
        "tests/test_cart.py": "from shop.cart import total_price\n\n\ndef test_total() -> None:\n"
                              "    assert total_price([1.0]) == 1.0\n",
    }
    repo = make_repo(tmp_path / "repo", files)
    issue = tmp_path / "issue.md"
    issue.write_text("The cart total price is wrong when the cart holds several items.")
    done = subprocess.run([sys.executable, "-m", "diffusellm", "locate", "--repo", str(repo), "--text-file",
                           str(issue), "--top", "2", "--json"], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["files"][0]["path"] == "shop/cart.py" and data["files"][0]["reasons"]
    assert all(not f["path"].startswith("tests/") for f in data["files"])
    assert data["functions"][0]["qualname"] == "shop.cart.total_price"
    assert set(data["functions"][0]) >= {"path", "qualname", "start_line", "end_line", "score"}


def _serve(tmp_path: Path, port: int, **extra: str) -> subprocess.Popen[bytes]:
    env = _env(tmp_path, DIFFUSELLM_WORKER_TOKEN="tok", DIFFUSELLM_SERVER__IN_PROCESS_WORKER="false", **extra)
    return subprocess.Popen([sys.executable, "-m", "diffusellm", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_shutdown_during_a_long_poll_answers_204_without_a_traceback(tmp_path: Path) -> None:
    port = _free_port()
    proc = _serve(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    answers: list[int] = []
    try:
        _wait_healthy(url, proc)

        def poll() -> None:
            answers.append(httpx.post(f"{url}/api/worker/claim", json={"worker_id": "w", "wait_seconds": 60},
                                      headers={"Authorization": "Bearer tok"}, timeout=90).status_code)

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(1.5)  # the claim is waiting in the app
        proc.terminate()
        poller.join(30)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert answers == [204]
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr[-3000:]


def test_restart_with_a_full_inbox_answers_at_once_while_triage_waits_for_github(tmp_path: Path) -> None:
    inbox = tmp_path / "state" / "inbox"
    inbox.mkdir(parents=True)
    payload = json.loads((EXAMPLES / "issues" / "labeled.payload.json").read_text(encoding="utf-8"))
    payload["label"]["name"] = "diffusellm"
    for n in range(40):
        (inbox / f"d-{n}.json").write_text(json.dumps(
            {"name": "issues", "delivery_id": f"d-{n}", "payload": payload}), encoding="utf-8")
    silent = socket.socket()  # "GitHub": accepts connections and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()
    port = _free_port()
    proc = _serve(tmp_path, port, APP_ID="1", PRIVATE_KEY=key, WEBHOOK_SECRET="s",
                  DIFFUSELLM_GITHUB__BASE_URL=f"http://127.0.0.1:{silent.getsockname()[1]}")
    url = f"http://127.0.0.1:{port}"
    try:
        assert _wait_healthy(url, proc).status_code == 200
        text = httpx.get(f"{url}/metrics", timeout=5).text
        assert 'diffusellm_inbox_deliveries{state="waiting"}' in text
        waiting = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith("diffusellm_inbox_deliveries{"))
        assert waiting == 40  # all still there: triage is stuck on the silent GitHub, the port is not
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        silent.close()
