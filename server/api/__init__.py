"""The HTTP and websocket API: one router per resource. The only package that imports FastAPI
(with server/main.py)."""
