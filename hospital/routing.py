"""All websocket routes of the project, collected in one place for the ASGI router."""

websocket_urlpatterns: list = []
