"""Discord, on interactions.py: the ChatPlatform adapter and the bot's extensions."""
