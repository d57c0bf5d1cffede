"""Astra: Discord sales bots for sellers, paid by PIX through Mercado Pago."""

__version__ = "0.1.0"
