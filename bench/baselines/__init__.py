"""What the product is measured against: `bare` (Flask that parses the JSON and answers 201),
`naive` (the same send API built the straightforward way) and `raw` (Redis and PostgreSQL on
their own). `bare` and `naive` run as their own processes, served as `wsgi.py` serves the
product; `processes` starts them."""
