"""The teaching demo: a small local web page that turns a report into an FFA video.

``ffasora demo`` serves it; :func:`ffasora.demo.server.create_app` builds the FastAPI app. The page shows a
report box with example reports, the generated video, its frames with their times after injection, and the
findings the report parser read from the report (codes, canonical names, negatives).
"""
