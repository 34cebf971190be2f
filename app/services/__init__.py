"""The domain: sending, inbox, preferences, credentials. Services never commit."""
