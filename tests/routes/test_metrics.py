"""GET /metrics: Prometheus text with request, phase, queue and model-load metrics."""

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PERMISSIVE
from tests.images import image_bytes

PHASES = {"received", "preprocessed", "model_loaded", "masks_generated", "objects_saved", "completed"}


def scrape(api, server) -> dict[str, list]:
    response = api.get(server.url + "/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(response.text())}


def value(samples, name: str, **labels) -> float:
    matching = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return sum(matching)


def test_metrics_count_requests_by_route_template_and_status_and_time_each_phase(api, server):
    before = scrape(api, server)
    multipart = {"image": {"name": "a.png", "mimeType": "image/png", "buffer": image_bytes()}, **PERMISSIVE}
    job_id = api.post(server.url + "/segment", multipart=multipart).json()["job_id"]
    api.get(f"{server.url}/results/{job_id}/overlay.png")
    api.get(f"{server.url}/results/{job_id}/nothing.txt")
    after = scrape(api, server)

    def grew(name, family, **labels):
        return value(after[family], name, **labels) - value(before.get(family, []), name, **labels)

    requests = "http_requests_total"
    assert grew(requests, "http_requests", route="/segment", method="POST", status="200") == 1
    assert grew(requests, "http_requests", route="/results/{job_id}/{file}", status="200") == 1
    assert grew(requests, "http_requests", route="/results/{job_id}/{file}", status="404") == 1
    assert grew("http_request_duration_seconds_count", "http_request_duration_seconds",
                route="/segment", status="200") == 1
    phases = {s.labels["phase"] for s in after["segmentation_phase_duration_seconds"]
              if s.name.endswith("_count") and s.value > 0}
    assert phases == PHASES
    assert value(after["segmentation_phase_duration_seconds"],
                 "segmentation_phase_duration_seconds_sum", phase="masks_generated") > 0
    assert value(after["model_load_seconds"], "model_load_seconds", model_type="sam_tiny") > 0
    for gauge in ("segmentation_jobs_in_flight", "segmentation_jobs_running", "segmentation_jobs_waiting"):
        assert value(after[gauge], gauge) == 0  # nothing runs between requests
    assert not [s for s in after["http_requests"] if job_id in str(s.labels)]  # no ids in labels
