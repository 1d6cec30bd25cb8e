import pytest
from django.contrib.sessions.models import Session

from core.sessions import SessionStore


@pytest.mark.django_db
def test_cycle_key_moves_data_to_a_new_key_written_once_on_save():
    store = SessionStore()
    store["a"] = 1
    store.save()
    old_key = store.session_key

    store.cycle_key()
    assert store.session_key is None and store["a"] == 1
    assert not Session.objects.filter(session_key=old_key).exists()
    store["b"] = 2
    store.save()

    assert store.session_key != old_key
    assert SessionStore(store.session_key).load() == {"a": 1, "b": 2}
    assert Session.objects.count() == 1


@pytest.mark.django_db
def test_key_collision_draws_a_new_key(monkeypatch):
    first = SessionStore()
    first["x"] = 1
    first.save()
    keys = iter([first.session_key, "b" * 32])
    second = SessionStore()
    monkeypatch.setattr(second, "_get_new_session_key", lambda: next(keys))
    second["y"] = 2
    second.save()
    assert second.session_key == "b" * 32
    assert SessionStore(first.session_key).load() == {"x": 1}
