"""What the bot and the platform say about subscriptions, in pt-BR (default) and English.
Merged into `texts.TEXTS`, kept apart so the subscription feature reads as one piece."""

from __future__ import annotations

SUBSCRIPTION_TEXTS: dict[str, dict[str, str]] = {
    "sub_reminder_title": {
        "pt-BR": "⏳ Sua assinatura está acabando",
        "en": "⏳ Your subscription is ending",
    },
    "sub_reminder": {
        "pt-BR": "Sua assinatura **{product} — {variant}** termina <t:{ts}:R> (<t:{ts}:f>). "
                 "Renove agora para não perder o acesso.",
        "en": "Your subscription **{product} — {variant}** ends <t:{ts}:R> (<t:{ts}:f>). "
              "Renew now to keep your access.",
    },
    "sub_ended_title": {"pt-BR": "Sua assinatura terminou", "en": "Your subscription has ended"},
    "sub_ended": {
        "pt-BR": "Sua assinatura **{product} — {variant}** terminou e o acesso foi removido. "
                 "Você pode renová-la quando quiser.",
        "en": "Your subscription **{product} — {variant}** has ended and the access was removed. "
              "You can renew it whenever you like.",
    },
    "btn_renew": {"pt-BR": "Renovar", "en": "Renew"},
    "btn_card_cancel": {"pt-BR": "Cancelar renovação automática", "en": "Cancel auto-renewal"},
    "btn_card_start": {"pt-BR": "Renovar automaticamente (cartão)", "en": "Auto-renew (card)"},
    "my_subs_none": {
        "pt-BR": "Você não tem assinaturas nesta loja.",
        "en": "You have no subscriptions in this shop.",
    },
    "my_subs_title": {"pt-BR": "**Suas assinaturas**", "en": "**Your subscriptions**"},
    "my_subs_active": {
        "pt-BR": "• **{product} — {variant}**: ativa até <t:{ts}:f> (<t:{ts}:R>){card}",
        "en": "• **{product} — {variant}**: active until <t:{ts}:f> (<t:{ts}:R>){card}",
    },
    "my_subs_ended": {
        "pt-BR": "• **{product} — {variant}**: encerrada em <t:{ts}:d>",
        "en": "• **{product} — {variant}**: ended on <t:{ts}:d>",
    },
    "my_subs_card": {
        "pt-BR": " · renovação automática por cartão",
        "en": " · automatic card renewal",
    },
    "card_cancelled": {
        "pt-BR": "Renovação automática cancelada. Seu acesso continua até o fim do período pago.",
        "en": "Automatic renewal cancelled. Your access lasts until the end of the paid period.",
    },
    "card_link": {
        "pt-BR": "Autorize a renovação automática no Mercado Pago: {url}",
        "en": "Authorise the automatic renewal on Mercado Pago: {url}",
    },
    "renew_pix_sent": {
        "pt-BR": "PIX da renovação enviado acima.",
        "en": "Renewal PIX sent above.",
    },
}
