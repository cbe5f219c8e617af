"""The Webex REST API side (`/v1/`): REST items of the world, OAuth, wire format, ground truth, routes."""
