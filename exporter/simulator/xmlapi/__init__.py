"""The Webex XML API side: request envelopes and list bodies, credentials, the operations, response XML."""
