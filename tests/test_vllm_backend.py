"""The vLLM backend's client side against a stub OpenAI-compatible server (the real server: test_vllm_server.py)."""

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from stretto.backends.prompt import PromptParts
from stretto.backends.vllm_backend import VLLMBackend, VLLMClient, yes_no_log_odds
from stretto.errors import ModelError, OptimizerError
from stretto.operators.family import FamilySpec
from stretto.profiling.operator import OperatorId


class Stub(BaseHTTPRequestHandler):
    """Serves model 'qwen-0.5b'; a prompt containing 'good' answers Yes, anything else No."""

    requests: ClassVar[list] = []

    def log_message(self, *args):
        pass

    def _send(self, body, code=200):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/slow":  # outlasts a short client timeout, then hangs up without an answer
            time.sleep(1.0)
            return
        if self.path == "/health":
            return self._send({})
        if self.path == "/v1/models":
            return self._send({"data": [{"id": "qwen-0.5b"}]})
        self._send({"error": "no"}, 404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Stub.requests.append(body)
        if body["model"] != "qwen-0.5b":
            return self._send({"error": {"message": f"model {body['model']} does not exist"}}, 404)
        prompt = body["prompt"] if isinstance(body["prompt"], str) else "".join(map(chr, body["prompt"]))
        yes = "good" in prompt
        top = {"Yes": -0.1 if yes else -3.0, "No": -3.0 if yes else -0.1, "Maybe": -5.0}
        self._send(
            {
                "choices": [
                    {
                        "text": "Yes" if yes else "No",
                        "logprobs": {"top_logprobs": [top], "token_logprobs": [top["Yes" if yes else "No"]]},
                    }
                ],
                "usage": {"prompt_tokens": len(body["prompt"])},
            }
        )


@pytest.fixture
def stub_url():
    Stub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


class CharTokenizer:
    """One token per character: enough to check that the ids sent are the prompt's."""

    @staticmethod
    def encode(text, add_special_tokens=False):
        return [ord(c) for c in text]


class FakeServed:
    identity = "qwen2.5-coder-0.5b-instruct@1d9614638d18"
    tokenizer = CharTokenizer()
    max_context = 32768


def test_log_odds_from_top_logprobs():
    assert yes_no_log_odds({"Yes": -0.5, " Yes": -2.0, "No": -1.5}) == pytest.approx(
        math.log(math.exp(-0.5) + math.exp(-2.0)) + 1.5
    )
    assert yes_no_log_odds({"Yes": -0.2, "Sure": -4.0}) == pytest.approx(-0.2 + 4.0)  # No below the floor


def test_scores_rows_concurrently_and_keeps_warm_up_out_of_the_accounting(stub_url):
    backend = VLLMBackend(FakeServed(), stub_url, served_name="qwen-0.5b", concurrency=4)
    prompts = [
        PromptParts(f"Text:\nreview {i} is {'good' if i % 3 == 0 else 'bad'}", "\n\nQuestion?") for i in range(10)
    ]
    scored = backend.score(prompts, progress=False)
    assert [s > 0 for s in scored.scores] == [i % 3 == 0 for i in range(10)]
    assert scored.scores[0] == pytest.approx(2.9)
    assert (scored.seconds > 0).all() and (scored.tokens > 0).all()
    assert len(Stub.requests) == 11  # one uncounted warm-up, then one request per row
    sent = ["".join(map(chr, r["prompt"])) for r in Stub.requests[1:]]  # token ids: document first, then question
    assert all(r["max_tokens"] == 1 and r["logprobs"] == 20 for r in Stub.requests[1:])
    assert sorted(sent) == sorted(p.prefix + p.suffix for p in prompts)
    # requests arrive in whatever order the threads send them: find row 0's ("good" and "bad" differ in length)
    sent = next(text for text in sent if text.startswith("Text:\nreview 0 "))
    assert scored.tokens[0] == len(sent)
    assert OperatorId.parse(backend.identity) == OperatorId(backend.loaded.identity, served=True)
    answers = backend.generate([PromptParts("Text:\na good film", "\n\nTitle?")], progress=False)
    assert answers.texts == ["Yes"] and answers.logprobs[0] == pytest.approx(-0.1)
    assert Stub.requests[-1]["stop"] == ["\n"] and Stub.requests[-1]["logprobs"] == 1


def test_unreachable_server_and_wrong_model_are_named(stub_url):
    with pytest.raises(ModelError, match=r"no vLLM server reachable at http://127.0.0.1:9/v1.*make vllm-server"):
        VLLMClient("http://127.0.0.1:9/v1", timeout=2).models()
    backend = VLLMBackend(FakeServed(), stub_url, served_name="qwen-1.5b")
    with pytest.raises(ModelError, match=r"serves \['qwen-0.5b'\], not 'qwen-1.5b'"):
        backend.score([PromptParts("a", "b")], progress=False)


def test_a_request_that_outlasts_the_timeout_says_so(stub_url):
    client = VLLMClient(stub_url, timeout=0.2)
    with pytest.raises(ModelError, match=r"did not answer /slow within 0.2 s: raise backend.timeout"):
        client._request("/slow")


def test_family_serves_uncompressed_operators_on_vllm():
    config = {
        "models": [
            {"model": "qwen-0.5b", "variants": [{"press": "none", "ratio": 0.0}, {"press": "knorm", "ratio": 0.5}]}
        ],
        "gold": {"model": "qwen-1.5b", "press": "none", "ratio": 0.0},
        "serve": {"qwen-1.5b": "http://gpu:8000/v1", "qwen-0.5b": "http://127.0.0.1:8000/v1"},
    }
    spec = FamilySpec.of(config)
    gold = OperatorId.parse(spec.gold_identity)
    assert gold.full_cache and gold.served
    assert [OperatorId.parse(i).served for i in spec.identities] == [True, False, True]  # knorm stays on transformers
    with pytest.raises(OptimizerError, match=r"family.serve names model\(s\) \['qwen-7b'\]"):
        FamilySpec.of(config | {"serve": {"qwen-7b": "http://x"}})
