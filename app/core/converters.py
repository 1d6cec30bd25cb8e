"""Path converters for the URL configuration (registered in core.apps)."""

MAX_ID = 2**63 - 1  # PostgreSQL's bigint, the type of every id


class DatabaseIdConverter:
    """`<id:name>`: a row id in a URL. Numbers a bigint cannot hold match no route (404),
    the same on every database: they never reach a query (SQLite raises OverflowError on them,
    PostgreSQL compares them as numeric)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError("beyond a bigint")
        return number

    def to_url(self, value) -> str:
        return str(int(value))
