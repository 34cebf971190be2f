"""A first end-to-end pass through the producer and inbox APIs."""

from tests.conftest import send


def test_send_list_read_receipt(producer, user_client):
    ana = user_client("u1", email="ana@example.com")
    [notification_id] = send(producer, to="u1", title="New comment", body="Ana replied")
    page = ana.get("/me/notifications").get_json()
    assert [item["id"] for item in page["items"]] == [notification_id]
    assert page["unread_count"] == 1
    read = ana.post(f"/me/notifications/{notification_id}/read").get_json()
    assert read["read_at"] is not None
    receipt = producer.get(f"/notifications/{notification_id}").get_json()
    assert receipt["read_at"] == read["read_at"]
