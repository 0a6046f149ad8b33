"""The service's request parsing and metrics, without a server."""

import pytest

from retrain.serving import BadRequest, Limits, Metrics, parse_rows

LIMITS = Limits(max_rows=3, max_body_mb=1, poll_seconds=1)


def test_csv_and_json_records_give_the_same_text_frame():
    csv = parse_rows(b"id,x\n007,1.5\n008,\n", "text/csv; charset=utf-8", LIMITS)
    assert csv.to_dict(orient="records") == [{"id": "007", "x": "1.5"}, {"id": "008", "x": ""}]
    records = parse_rows(b'{"records": [{"id": "007", "x": 1.5}]}', "application/json", LIMITS)
    assert records.to_dict(orient="records") == [{"id": "007", "x": 1.5}]


@pytest.mark.parametrize(
    ("body", "kind", "status", "message"),
    [
        (b"id,x\n1,2,3\n", "text/csv", 400, "CSV line 2 has 3 fields, expected 2"),
        (b"", "text/csv", 400, "empty CSV"),
        (b"id\n1\n2\n3\n4\n", "text/csv", 413, "more than 3 rows"),
        (b"[1, 2]", "application/json", 400, "expected a JSON list of records"),
        (b"[]", "application/json", 422, "no rows to score"),
        (b'[{"id": {"a": 1}}]', "application/json", 422, "record 1: column 'id'"),
        (b"\xff", "text/csv", 400, "not UTF-8"),
        (b"<a/>", "application/xml", 415, "application/xml"),
    ],
)
def test_a_bad_body_is_one_status_and_one_line(body, kind, status, message):
    with pytest.raises(BadRequest) as bad:
        parse_rows(body, kind, LIMITS)
    assert bad.value.status == status and message in bad.value.message


def test_metrics_count_requests_rows_and_latency_buckets():
    metrics = Metrics()
    metrics.observe("/predict", 200, 0.02, rows=5)
    metrics.observe("/predict", 422, 3.0, rows=0)
    text = metrics.text(None)
    assert 'retrain_requests_total{path="/predict",status="200"} 1' in text
    assert "retrain_rows_scored_total 5" in text
    assert 'retrain_request_seconds_bucket{le="0.025"} 1' in text
    assert 'retrain_request_seconds_bucket{le="+Inf"} 2' in text
