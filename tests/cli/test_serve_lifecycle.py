"""`diffusellm serve` starting with a full inbox and stopping during a worker's long poll."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.cli.test_server import _env, _free_port, _wait_healthy
from tests.fakes.webhook_payloads import EXAMPLES


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
