"""Settings for the test suite: the production settings with test-only defaults."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-secret")
os.environ.setdefault("HUEY_IMMEDIATE", "1")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("EXAM_ORIGIN", "http://exams.testserver")
# The test LMSs (tests/support/lms_stub.py) listen on loopback; the tests of refused
# destinations set it back to nothing.
os.environ.setdefault("OUTBOUND_ALLOWED_NETWORKS", "127.0.0.0/8")

from numbas_lti.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# In-process tests (several pytest workers share VAR_DIR) keep the "shared" cache to themselves;
# live servers and scripts/dev read numbas_lti.settings, where it is shared between processes.
if not REDIS_URL:  # noqa: F405
    CACHES["shared"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",  # noqa: F405
                        "LOCATION": "shared"}
