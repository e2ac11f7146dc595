"""``rcr top``: a live terminal view of one worker's HTTP API for on-call staff.

Split in three so the screen can be tested without a worker or a terminal:
``model`` (what was fetched, parsed, plus the short in-memory history behind the sparklines),
``render`` (pure functions from that to rich renderables) and ``client`` (the HTTP polling).
"""
