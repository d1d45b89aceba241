"""The scoring server in-process: a call scored over HTTP equals ``callqa score``'s record; bad input,
a missing key and a full server get a 4xx that says why, never a 5xx."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import schemathesis
import soundfile as sf
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callqa.data.rubric import load_rubric
from callqa.data.schema import CallRecord
from callqa.serving.app import Limits, create_app
from callqa.serving.pipeline import CallPipeline
from callqa.serving.score import Job, Scorer
from callqa.serving.vad import load_vad
from tests.pipeline_fakes import FakeSer, SpyAsr, bad_files


def _scorer() -> Scorer:
    return Scorer(load_rubric(), CallPipeline(SpyAsr(), load_vad("energy"), FakeSer(), raw=True))


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(_scorer(), Limits(max_upload_mb=5, max_call_minutes=2)))


def _post(client: TestClient, path: Path, **form: str):
    with open(path, "rb") as fh:
        return client.post("/v1/calls:score", files={"audio": (path.name, fh, "audio/wav")}, data=form)


def test_a_call_scored_over_http_is_the_batch_record(
    client: TestClient, tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    call = tiny_calls[0]
    r = _post(client, tiny_corpus / call.audio, metadata=f'{{"id": "{call.id}"}}')
    assert r.status_code == 200, r.text
    body = r.json()
    batch = _scorer().score(Job(call.id, tiny_corpus / call.audio)).to_json()
    for key in ("id", "total", "band", "fatal", "items", "events", "masked"):
        assert body[key] == batch[key], key
    assert body["masked"] and body["call"]["turns"]
    assert body["call"]["audio"] == Path(call.audio).name  # the upload's name, not the server's temp path
    # the speaker mapping travels in the metadata
    swapped = _post(
        client, tiny_corpus / call.audio, metadata='{"channels": {"agent": 1, "customer": 0}}'
    ).json()
    assert [t["speaker"] for t in swapped["call"]["turns"]] != [t["speaker"] for t in body["call"]["turns"]]


def test_bad_uploads_get_a_4xx_naming_the_fault(
    client: TestClient, tiny_corpus: Path, tiny_calls: list[CallRecord], tmp_path: Path
) -> None:
    good = tiny_corpus / tiny_calls[0].audio
    files = {k: v for k, v in bad_files(tmp_path, good).items() if k != "folder"}
    files["silence"] = tmp_path / "silence.wav"
    sf.write(files["silence"], np.zeros((2, 8000 * 10), np.float32).T, 8000)
    files["too-long"] = tmp_path / "long.wav"
    sf.write(files["too-long"], np.zeros(8000 * 150, np.int16), 8000)
    files["lying-header"] = tmp_path / "lying.wav"
    data = bytearray(good.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = (10 * len(data)).to_bytes(4, "little")  # promises ten times what it holds
    files["lying-header"].write_bytes(bytes(data))
    for kind, path in files.items():
        r = _post(client, path)
        if kind == "silence":  # a valid call with nobody in it: scored, not judged
            assert r.status_code == 200 and r.json()["judged"] is False
            continue
        assert 400 <= r.status_code < 500, (kind, r.status_code, r.text)
        message = r.json()["error"]
        assert path.name in message and "callqa-upload-" not in message, (kind, message)
    assert client.post("/v1/calls:score").status_code == 422  # no file at all
    for bad in ("{", "[1]", '{"channels": "quad"}', '{"id": "../../etc"}', '{"channels": {"agent": 0}}'):
        r = _post(client, good, metadata=bad)
        assert r.status_code == 422 and "metadata" in r.json()["error"], bad
    assert _post(client, good, rubric="another-centre").status_code == 404


def test_an_upload_over_the_size_limit_is_refused(tiny_corpus: Path, tmp_path: Path) -> None:
    small = TestClient(create_app(_scorer(), Limits(max_upload_mb=0.01)))
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros(8000 * 10, np.int16), 8000)
    r = _post(small, big)
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunked():  # no length declared: refused as the bytes arrive
        yield b'--b\r\nContent-Disposition: form-data; name="audio"; filename="big.wav"\r\n\r\n'
        yield from (b"x" * 4096 for _ in range(100))

    r = small.post(
        "/v1/calls:score", content=chunked(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert r.status_code == 413
    assert 'callqa_errors_total{reason="too_large"} 2.0' in small.get("/metrics").text


def test_health_and_model_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "callqa"
    asr = client.get("/v2/models/asr")
    assert asr.status_code == 200 and asr.json()["name"] == "asr"
    assert client.get("/v2/models/ser/ready").json() == {"name": "ser", "ready": True}
    missing = client.get("/v2/models/whisper-large")
    assert missing.status_code == 404 and "asr" in missing.json()["error"]


def test_the_api_key_is_needed_except_for_health_probes(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    locked = TestClient(create_app(_scorer(), api_key="s3cret"))
    good = tiny_corpus / tiny_calls[0].audio
    assert locked.get("/v2/health/ready").status_code == 200
    assert locked.get("/v2").status_code == 401
    assert _post(locked, good).status_code == 401
    assert locked.get("/v2", headers={"X-API-Key": "s3cret-not"}).status_code == 401
    assert locked.get("/v2", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert locked.get("/v2", headers={"Authorization": "Bearer s3cret"}).status_code == 200


class _GatedScorer(Scorer):
    """Holds every call until the test opens the gate, so the server is provably full."""

    def __init__(self) -> None:
        base = _scorer()
        self.__dict__.update(base.__dict__)
        self.started, self.gate = threading.Event(), threading.Event()

    def score(self, job: Job):
        self.started.set()
        assert self.gate.wait(30)
        return super().score(job)


def test_a_full_server_queues_a_few_and_answers_429_with_retry_after_beyond(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    scorer = _GatedScorer()
    good = tiny_corpus / tiny_calls[0].audio
    app = create_app(scorer, Limits(max_concurrent=1, max_queue=1, retry_after_s=3))

    async def burst() -> list[int]:
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            files = {"audio": (good.name, good.read_bytes(), "audio/wav")}
            first = asyncio.create_task(http.post("/v1/calls:score", files=files))
            await asyncio.to_thread(scorer.started.wait, 30)
            queued = asyncio.create_task(http.post("/v1/calls:score", files=files))
            await asyncio.sleep(0.2)  # let it reach the queue
            refused = await http.post("/v1/calls:score", files=files)
            assert refused.headers["retry-after"] == "3" and "1 waiting" in refused.json()["error"]
            scorer.gate.set()
            return [(await first).status_code, (await queued).status_code, refused.status_code]

    assert asyncio.run(burst()) == [200, 200, 429]


def test_metrics_count_requests_refusals_audio_and_models(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    client = TestClient(create_app(_scorer()))
    good = tiny_corpus / tiny_calls[0].audio
    assert _post(client, good).status_code == 200
    empty = good.with_name("empty.wav")
    r = client.post("/v1/calls:score", files={"audio": (empty.name, b"", "audio/wav")})
    assert r.status_code == 400
    client.get("/v2/models/nothing-here")
    text = client.get("/metrics").text
    assert 'callqa_requests_total{route="/v1/calls:score",status="200"} 1.0' in text
    assert 'callqa_requests_total{route="/v2/models/{name}",status="404"} 1.0' in text
    assert 'callqa_errors_total{reason="empty"} 1.0' in text
    assert 'callqa_errors_total{reason="no_model"} 1.0' in text
    audio = next(ln for ln in text.splitlines() if ln.startswith("callqa_audio_seconds_total"))
    assert float(audio.split()[1]) == pytest.approx(sf.info(good).duration, abs=0.01)
    assert 'callqa_calls_scored_total{judged="true"} 1.0' in text
    assert 'callqa_request_seconds_bucket{le="+Inf",route="/v1/calls:score"} 2.0' in text
    assert 'callqa_model_info{kind="energy",model="vad",quantization="",source="",version="1"} 1.0' in text
    assert "callqa_calls_in_flight 0.0" in text


def _doubling_graph(path: Path) -> Path:
    """y = 2 * wave, with a lengths input passed through: a graph of the ASR's shape, built in a line."""
    import onnx
    from onnx import TensorProto, helper

    wave = helper.make_tensor_value_info("wave", TensorProto.FLOAT, ["batch", "time"])
    lengths = helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"])
    doubled = helper.make_tensor_value_info("doubled", TensorProto.FLOAT, ["batch", "time"])
    kept = helper.make_tensor_value_info("kept", TensorProto.INT64, ["batch"])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["wave", "two"], ["doubled"]),
            helper.make_node("Identity", ["lengths"], ["kept"]),
        ],
        "double",
        [wave, lengths],
        [doubled, kept],
        [two],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_oip_infer_runs_a_graph_and_refuses_what_does_not_fit_it(tmp_path: Path) -> None:
    import onnxruntime as ort

    scorer = _scorer()
    scorer.pipeline.asr.session = ort.InferenceSession(str(_doubling_graph(tmp_path / "double.onnx")))
    client = TestClient(create_app(scorer, Limits(max_upload_mb=0.001)))
    meta = client.get("/v2/models/asr").json()
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [
        {"name": "wave", "datatype": "FP32", "shape": [-1, -1]},
        {"name": "lengths", "datatype": "INT64", "shape": [-1]},
    ]
    wave = {"name": "wave", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}
    lengths = {"name": "lengths", "shape": [2], "datatype": "INT64", "data": [3, 2]}
    r = client.post("/v2/models/asr/infer", json={"id": "r1", "inputs": [wave, lengths]})
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert out["doubled"] == {
        "name": "doubled",
        "shape": [2, 3],
        "datatype": "FP32",
        "data": [2, 4, 6, 8, 10, 12],
    }
    assert out["kept"]["data"] == [3, 2] and r.json()["id"] == "r1"
    only = client.post(
        "/v2/models/asr/infer", json={"inputs": [wave, lengths], "outputs": [{"name": "kept"}]}
    )
    assert [o["name"] for o in only.json()["outputs"]] == ["kept"]
    bad = {
        "missing input": {"inputs": [wave]},
        "wrong datatype": {"inputs": [{**wave, "datatype": "INT64"}, lengths]},
        "wrong rank": {"inputs": [{**wave, "shape": [6]}, lengths]},
        "too few values": {"inputs": [{**wave, "data": [1, 2]}, lengths]},
        "not numbers": {"inputs": [{**wave, "data": ["a"] * 6}, lengths]},
        "NaN": {"inputs": [{**wave, "data": [1, 2, 3, 4, 5, "NaN"]}, lengths]},
        "unknown output": {"inputs": [wave, lengths], "outputs": [{"name": "logits"}]},
        "not a request": {"tensors": []},
        "too many elements": {"inputs": [{**wave, "shape": [1, 300], "data": [0] * 300}, lengths]},
    }
    for what, body in bad.items():
        r = client.post("/v2/models/asr/infer", json=body)
        assert r.status_code in (400, 413, 422) and r.json()["error"], (what, r.status_code, r.text)
    r = client.post(
        "/v2/models/asr/infer", content=b"{" * 100_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert client.post("/v2/models/ser/infer", json={"inputs": [wave]}).status_code == 400  # no graph there
    assert client.post("/v2/models/nothing/infer", json={"inputs": [wave]}).status_code == 404


def _fuzzed_app():
    import onnxruntime as ort

    scorer = _scorer()
    graph = _doubling_graph(Path(tempfile.mkdtemp(prefix="callqa-test-graph-")) / "double.onnx")
    scorer.pipeline.asr.session = ort.InferenceSession(str(graph))
    return create_app(scorer, Limits(max_upload_mb=1))


@given(data=st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_the_schema_allows_gets_a_5xx(data: st.DataObject) -> None:
    """Schemathesis writes requests from the OpenAPI document (random uploads, tensors, model names,
    metadata), for every route; whatever it sends, the answer is a success or a 4xx with an error."""
    case = data.draw(FUZZ.as_strategy())
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["error"]


FUZZ = schemathesis.openapi.from_asgi("/openapi.json", _fuzzed_app())


def test_a_real_server_on_loopback_finishes_the_calls_in_flight_when_told_to_stop(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    import httpx
    import uvicorn

    scorer = _GatedScorer()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(scorer), host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=30
        )
    )
    serving = threading.Thread(target=server.run)
    serving.start()
    for _ in range(300):
        if server.started:
            break
        threading.Event().wait(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    good = tiny_corpus / tiny_calls[0].audio
    answers: dict[str, httpx.Response] = {}

    def post() -> None:
        files = {"audio": (good.name, good.read_bytes(), "audio/wav")}
        answers["call"] = httpx.post(f"http://127.0.0.1:{port}/v1/calls:score", files=files, timeout=60)

    client = threading.Thread(target=post)
    client.start()
    assert scorer.started.wait(30)
    server.should_exit = True  # what SIGTERM does
    threading.Event().wait(0.5)
    scorer.gate.set()
    client.join(60)
    serving.join(60)
    assert not serving.is_alive() and answers["call"].status_code == 200
    assert answers["call"].json()["id"] == good.stem


def test_model_versions_are_the_loaded_ones(client: TestClient) -> None:
    assert client.get("/v2/models/vad/versions/1").json()["name"] == "vad"
    assert client.get("/v2/models/vad/versions/1/ready").json() == {"name": "vad", "ready": True}
    r = client.get("/v2/models/vad/versions/7/ready")
    assert r.status_code == 404 and "loaded: 1" in r.json()["error"]


def test_a_record_names_the_registry_version_its_models_came_from(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    """Served from ``models:/NAME@champion``, a record names the version, not the temporary folder the
    model was downloaded to; a model loaded from a file keeps its path."""
    pipeline = CallPipeline(SpyAsr(), load_vad("energy"), FakeSer(), raw=True)
    scorer = Scorer(load_rubric(), pipeline, sources={"asr": "models:/callqa-asr/3"})
    call = tiny_calls[0]
    record = scorer.score(Job(call.id, tiny_corpus / call.audio))
    assert record.models["asr"].path == "models:/callqa-asr/3"
    assert scorer.model_infos(from_audio=True)["asr"].path == "models:/callqa-asr/3"
    from callqa.serving.metrics import Metrics

    text = Metrics(scorer.model_infos(from_audio=True)).render().decode()
    assert 'model="asr",quantization="",source="models:/callqa-asr/3"' in text
    assert record.models["ser"].path == pipeline.models()["ser"].path


def test_calls_posted_at_once_each_get_their_own_record(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    """Six different calls in flight together on two workers: every answer is the batch record of the
    call that was posted (no result handed to the wrong request), and none is refused."""
    app = create_app(_scorer(), Limits(max_concurrent=2, max_queue=8))
    calls = tiny_calls[:6]

    async def burst() -> list:
        import httpx

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as http:
            posts = [
                http.post(
                    "/v1/calls:score",
                    files={"audio": (c.audio, (tiny_corpus / c.audio).read_bytes(), "audio/wav")},
                    data={"metadata": f'{{"id": "{c.id}"}}'},
                )
                for c in calls
            ]
            return await asyncio.gather(*posts)

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * len(calls)
    batch = _scorer()
    for call, answer in zip(calls, answers, strict=True):
        want = batch.score(Job(call.id, tiny_corpus / call.audio)).to_json()
        got = answer.json()
        assert got["id"] == call.id and got["total"] == want["total"] and got["items"] == want["items"]
        assert [(t["start"], t["end"]) for t in got["call"]["turns"]] == [
            (t["start"], t["end"]) for t in want["call"]["turns"]
        ]


def test_the_client_waits_out_a_full_server_and_reports_a_refusal(
    tiny_corpus: Path, tiny_calls: list[CallRecord]
) -> None:
    import httpx

    from callqa.serving.client import ScoringClient, ServerError

    call = tiny_calls[0]
    record = _scorer().score(Job(call.id, tiny_corpus / call.audio)).to_json()
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-api-key", ""))
        if len(seen) < 3:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "busy"})
        if len(seen) == 3:
            return httpx.Response(200, json=record)
        return httpx.Response(400, json={"error": "call.wav: truncated WAV"})

    with ScoringClient("http://test", api_key="k", transport=httpx.MockTransport(server)) as client:
        got = client.score(tiny_corpus / call.audio, {"id": call.id})
        assert got.id == call.id and got.total == record["total"] and seen == ["k", "k", "k"]
        with pytest.raises(ServerError, match=r"400 call\.wav: truncated WAV"):
            client.score(tiny_corpus / call.audio)
