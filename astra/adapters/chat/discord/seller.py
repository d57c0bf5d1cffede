"""`/loja ...`: the seller's commands. Manage Server only, and only in the guild the instance is
bound to (`/loja vincular` binds it with the instance key).

What this bot checks here is for the buyer's comfort (a clear message, no round trip); what
counts is the platform's own check: each command hands it the interaction, and the platform
asks Discord who made it and whether they manage the guild or hold the staff role."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import interactions
from interactions import OptionType, Permissions, SlashCommandChoice, SlashContext

from astra.adapters.chat.discord import permcheck, posting, ui
from astra.adapters.chat.discord.context import BotContext, friendly, interaction_of
from astra.adapters.chat.discord.texts import t
from astra.domain.catalog import Product
from astra.domain.errors import DomainError, InvalidInput, NotFoundError
from astra.domain.money import format_brl, parse_brl
from astra.domain.stock import MAX_STOCK_FILE_BYTES
from astra.ports.chat import ChatError

MANAGE = Permissions.MANAGE_GUILD
_VARIANT_RE = re.compile(r"^\s*([^=;]{1,100}?)\s*=\s*([^;:]+?)\s*(?::\s*(\d{1,3}))?\s*$")


def loja(**kwargs: Any) -> Any:
    """A `/loja ...` subcommand. Declared per method (not through a module-level SlashCommand,
    which would be shared by every client in the process and keep the first one's callbacks)."""
    return interactions.slash_command(
        name="loja",
        description="Gerenciar a loja",
        default_member_permissions=MANAGE,
        dm_permission=False,
        **kwargs,
    )


class SellerRefused(DomainError):
    http_status = 403


def parse_variants(spec: str) -> list[dict[str, Any]]:
    """'Mensal=19,90:5;Anual=99,90' -> variants (name, price, optional max per order)."""
    variants = []
    for part in [p for p in (spec or "").split(";") if p.strip()]:
        m = _VARIANT_RE.match(part)
        if not m:
            raise InvalidInput("invalid_field", field="variantes (Nome=19,90;Outro=29,90)")
        item: dict[str, Any] = {"name": m.group(1), "price_cents": parse_brl(m.group(2))}
        if m.group(3):
            item["max_per_order"] = int(m.group(3))
        variants.append(item)
    if not variants:
        raise InvalidInput("invalid_field", field="variantes (Nome=19,90;Outro=29,90)")
    return variants


async def welcome(bot: BotContext, guild_id: str, system_channel_id: Any) -> str | None:
    """Post the welcome in the server's system channel, else its first text channel that takes
    it. Returns the channel used (None: nowhere would take it; not worth an error)."""
    try:
        settings = await bot.settings(fresh=True)
    except Exception:
        settings = {}
    language = settings.get("language") or "pt-BR"
    message = ui.welcome_message(settings, language)
    candidates = [str(system_channel_id)] if system_channel_id else []
    try:
        channels = await bot.chat.list_channels(guild_id)
    except ChatError:
        channels = []
    candidates += [c["id"] for c in channels if c.get("type") == 0 and c["id"] not in candidates]
    for channel_id in candidates[:5]:
        try:
            await bot.chat.send_message(channel_id, message)
            return channel_id
        except ChatError:
            continue
    return None


class SellerExtension(interactions.Extension):
    def __init__(self, bot: interactions.Client, bot_ctx: BotContext) -> None:
        self.bot_ctx = bot_ctx

    async def _guard(self, ctx: SlashContext, *, bind: bool = False, defer: bool = True) -> str:
        """Manage Server in the bound guild (Discord hides the command from others already; this
        also refuses a forged or stale permission), then the deferral the platform's own check
        needs (`defer=False` where a modal must be the first answer). Returns the language."""
        bot = self.bot_ctx
        settings = await bot.settings(fresh=True)
        language = settings.get("language") or "pt-BR"
        if ctx.guild_id is None or not ctx.author.has_permission(MANAGE):
            raise SellerRefused("checkout_vetoed", reason=t(language, "not_allowed"))
        if not bind:
            if not settings.get("guild_id"):
                raise SellerRefused("checkout_vetoed", reason=t(language, "not_bound"))
            if str(settings["guild_id"]) != str(ctx.guild_id):
                raise SellerRefused("checkout_vetoed", reason=t(language, "wrong_guild"))
        if defer:
            await ctx.defer(ephemeral=True)
        return language

    async def _product(self, ref: str) -> Product:
        bot = self.bot_ctx
        products = await bot.api.list_products()
        ref = (ref or "").strip()
        for p in products:
            if p.id == ref or p.name.casefold() == ref.casefold():
                return p
        raise NotFoundError("produto", ref)

    # -- vincular ------------------------------------------------------------------------------

    @loja(
        sub_cmd_name="vincular",
        sub_cmd_description="Vincular este servidor à instância (chave da instância do portal)",
    )
    @interactions.slash_option("chave", "Chave da instância", OptionType.STRING, required=True)
    @friendly
    async def vincular(self, ctx: SlashContext, chave: str) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx, bind=True)
        if not await bot.api.bind_guild(chave, interaction=interaction_of(ctx)):
            raise SellerRefused("checkout_vetoed", reason=t(language, "bad_key"))
        bot.forget_settings()
        await ctx.send(t(language, "bound", instance=bot.instance_id), ephemeral=True)

    # -- produto -------------------------------------------------------------------------------

    @loja(
        group_name="produto",
        group_description="Produtos",
        sub_cmd_name="criar",
        sub_cmd_description="Criar um produto",
    )
    @interactions.slash_option(
        "nome", "Nome do produto", OptionType.STRING, required=True, max_length=100
    )
    @interactions.slash_option(
        "variantes",
        "Ex.: Mensal=19,90;Anual=99,90 (máx. por pedido: Mensal=19,90:5)",
        OptionType.STRING,
        required=True,
    )
    @interactions.slash_option("descricao", "Descrição", OptionType.STRING, max_length=4000)
    @interactions.slash_option(
        "tipo",
        "Como é entregue",
        OptionType.STRING,
        choices=[
            SlashCommandChoice("Chave (estoque)", "key"),
            SlashCommandChoice("Texto", "text"),
            SlashCommandChoice("Arquivo (URL)", "file"),
            SlashCommandChoice("Cargo", "role"),
        ],
    )
    @interactions.slash_option(
        "conteudo", "Texto, URL do arquivo ou ID do cargo", OptionType.STRING
    )
    @interactions.slash_option("banner", "URL da imagem do anúncio", OptionType.STRING)
    @interactions.slash_option(
        "mensagem",
        "Modelo da DM ({produto} {variante} {chaves} {pedido} {valor})",
        OptionType.STRING,
        max_length=2000,
    )
    @friendly
    async def produto_criar(
        self,
        ctx: SlashContext,
        nome: str,
        variantes: str,
        descricao: str = "",
        tipo: str = "key",
        conteudo: str = "",
        banner: str = "",
        mensagem: str = "",
    ) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        product = await bot.api.create_product(
            {
                "name": nome,
                "variants": parse_variants(variantes),
                "description": descricao,
                "delivery_kind": tipo,
                "content": conteudo,
                "banner_url": banner,
                "dm_template": mensagem,
            },
            interaction=interaction_of(ctx),
        )
        names = ", ".join(f"{v.name} ({format_brl(v.price_cents)})" for v in product.variants)
        await ctx.send(
            t(language, "product_created", name=product.name, id=product.id, variants=names),
            ephemeral=True,
        )

    @loja(
        group_name="produto",
        group_description="Produtos",
        sub_cmd_name="editar",
        sub_cmd_description="Editar um produto",
    )
    @interactions.slash_option("produto", "Nome ou ID", OptionType.STRING, required=True)
    @interactions.slash_option("nome", "Novo nome", OptionType.STRING, max_length=100)
    @interactions.slash_option("descricao", "Nova descrição", OptionType.STRING, max_length=4000)
    @interactions.slash_option(
        "variantes", "Substitui as variantes (mesmo formato de criar)", OptionType.STRING
    )
    @interactions.slash_option("ativo", "À venda?", OptionType.BOOLEAN)
    @interactions.slash_option("banner", "URL da imagem", OptionType.STRING)
    @interactions.slash_option("mensagem", "Modelo da DM", OptionType.STRING, max_length=2000)
    @friendly
    async def produto_editar(
        self,
        ctx: SlashContext,
        produto: str,
        nome: str | None = None,
        descricao: str | None = None,
        variantes: str | None = None,
        ativo: bool | None = None,
        banner: str | None = None,
        mensagem: str | None = None,
    ) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        product = await self._product(produto)
        changes: dict[str, Any] = {}
        for key, value in (
            ("name", nome),
            ("description", descricao),
            ("active", ativo),
            ("banner_url", banner),
            ("dm_template", mensagem),
        ):
            if value is not None:
                changes[key] = value
        if variantes is not None:
            by_name = {v.name.casefold(): v.id for v in product.variants}
            new = parse_variants(variantes)
            for item in new:  # keep ids (and so stock) of variants that keep their name
                if item["name"].casefold() in by_name:
                    item["id"] = by_name[item["name"].casefold()]
            changes["variants"] = new
        updated = await bot.api.update_product(product.id, changes, interaction=interaction_of(ctx))
        await ctx.send(t(language, "product_updated", name=updated.name), ephemeral=True)

    @loja(
        group_name="produto",
        group_description="Produtos",
        sub_cmd_name="listar",
        sub_cmd_description="Listar produtos e estoque",
    )
    @friendly
    async def produto_listar(self, ctx: SlashContext) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        products = await bot.api.list_products()
        counts = await bot.api.stock_counts()
        if not products:
            await ctx.send(t(language, "no_products"), ephemeral=True)
            return
        lines = []
        for p in products:
            flag = "" if p.active else " *(fora de venda)*"
            lines.append(f"**{p.name}** `{p.id}`{flag}")
            for v in p.variants:
                c = counts.get(v.id, {})
                lines.append(
                    f"  • {v.name} — {format_brl(v.price_cents)} · "
                    f"{c.get('available', 0)} disp. / {c.get('reserved', 0)} res. / "
                    f"{c.get('sold', 0)} vend."
                )
        await ctx.send("\n".join(lines)[:2000], ephemeral=True)

    @loja(
        group_name="produto",
        group_description="Produtos",
        sub_cmd_name="remover",
        sub_cmd_description="Tirar um produto de venda",
    )
    @interactions.slash_option("produto", "Nome ou ID", OptionType.STRING, required=True)
    @friendly
    async def produto_remover(self, ctx: SlashContext, produto: str) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        product = await self._product(produto)
        await bot.api.remove_product(product.id, interaction=interaction_of(ctx))
        await ctx.send(t(language, "product_removed", name=product.name), ephemeral=True)

    # -- estoque -------------------------------------------------------------------------------

    @loja(
        group_name="estoque",
        group_description="Estoque de chaves",
        sub_cmd_name="adicionar",
        sub_cmd_description="Adicionar chaves (arquivo .txt ou formulário)",
    )
    @interactions.slash_option("produto", "Nome ou ID", OptionType.STRING, required=True)
    @interactions.slash_option("variante", "Nome da variante", OptionType.STRING, required=True)
    @interactions.slash_option(
        "arquivo", "Arquivo .txt, uma chave por linha", OptionType.ATTACHMENT
    )
    @friendly
    async def estoque_adicionar(
        self,
        ctx: SlashContext,
        produto: str,
        variante: str,
        arquivo: interactions.Attachment | None = None,
    ) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx, defer=arquivo is not None)
        product = await self._product(produto)
        variant = next(
            (
                v
                for v in product.variants
                if v.name.casefold() == variante.strip().casefold() or v.id == variante.strip()
            ),
            None,
        )
        if variant is None:
            raise InvalidInput(
                "checkout_vetoed", reason=t(language, "variant_unknown", name=variante)
            )
        if arquivo is None:
            await ctx.send_modal(
                interactions.Modal(
                    interactions.ParagraphText(
                        label=t(language, "stock_modal_field"),
                        custom_id="keys",
                        max_length=4000,
                        required=True,
                    ),
                    title=t(language, "stock_modal_title"),
                    custom_id=f"astra:modal:stock:{product.id}:{variant.id}",
                )
            )
            return
        if (arquivo.size or 0) > MAX_STOCK_FILE_BYTES:
            raise InvalidInput("stock_file_too_large", limit="5 MB")
        data = await self._download(arquivo.url)
        report = await bot.api.import_stock(product.id, variant.id, data,
                                            interaction=interaction_of(ctx))
        await ctx.send(self._report(language, variant.name, report), ephemeral=True)

    async def _download(self, url: str) -> bytes:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
            if resp.status != 200:
                raise InvalidInput("invalid_field", field="arquivo")
            data = await resp.content.read(MAX_STOCK_FILE_BYTES + 1)
        if len(data) > MAX_STOCK_FILE_BYTES:
            raise InvalidInput("stock_file_too_large", limit="5 MB")
        return data

    @staticmethod
    def _report(language: str, variant: str, report: Any) -> str:
        return t(
            language,
            "stock_report",
            variant=variant,
            added=report.added,
            skipped=report.skipped,
            dup=report.duplicate_in_file,
            existing=report.already_in_stock,
            long=report.too_long,
            invalid=report.invalid,
            blank=report.blank,
        )

    @interactions.modal_callback(re.compile(r"^astra:modal:stock:"))
    @friendly
    async def estoque_modal(self, ctx: interactions.ModalContext, **values: str) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)  # type: ignore[arg-type]
        _, _, _, product_id, variant_id = ctx.custom_id.split(":")
        product = await bot.api.get_product(product_id)
        variant = product.variant(variant_id)
        report = await bot.api.import_stock(
            product_id, variant_id, ctx.responses.get("keys", ""), interaction=interaction_of(ctx)
        )
        await ctx.send(
            self._report(language, variant.name if variant else variant_id, report), ephemeral=True
        )

    @loja(
        group_name="estoque",
        group_description="Estoque de chaves",
        sub_cmd_name="ver",
        sub_cmd_description="Ver o estoque de um produto",
    )
    @interactions.slash_option("produto", "Nome ou ID", OptionType.STRING, required=True)
    @interactions.slash_option(
        "mostrar_chaves", "Mostrar as chaves disponíveis (só para você)", OptionType.BOOLEAN
    )
    @friendly
    async def estoque_ver(
        self, ctx: SlashContext, produto: str, mostrar_chaves: bool = False
    ) -> None:
        bot = self.bot_ctx
        await self._guard(ctx)
        product = await self._product(produto)
        counts = await bot.api.stock_counts()
        lines = [f"**{product.name}**"]
        for v in product.variants:
            c = counts.get(v.id, {})
            lines.append(
                f"• {v.name}: {c.get('available', 0)} disponíveis, "
                f"{c.get('reserved', 0)} reservadas, {c.get('sold', 0)} vendidas"
            )
        await ctx.send("\n".join(lines)[:2000], ephemeral=True)
        if mostrar_chaves:
            # The platform shows the keys itself, in follow-ups only this seller sees: they
            # never pass through the bot.
            for v in product.variants:
                await bot.api.send_keys(v.id, interaction=interaction_of(ctx), limit=20)

    # -- postar --------------------------------------------------------------------------------

    @loja(sub_cmd_name="postar", sub_cmd_description="Publicar um produto num canal")
    @interactions.slash_option("produto", "Nome ou ID", OptionType.STRING, required=True)
    @interactions.slash_option("canal", "Canal", OptionType.CHANNEL, required=True)
    @interactions.slash_option(
        "purge", "Apagar antes as publicações antigas deste produto no canal", OptionType.BOOLEAN
    )
    @friendly
    async def postar(
        self, ctx: SlashContext, produto: str, canal: interactions.GuildChannel,
        purge: bool = False,
    ) -> None:
        language = await self._guard(ctx)
        product = await self._product(produto)
        channel_id = str(canal.id)
        posted = await self._post(ctx, product, channel_id, purge=purge)
        key = "posted_purged" if purge else "posted"
        await ctx.send(t(language, key, channel=f"<#{channel_id}>", n=posted.purged),
                       ephemeral=True)

    async def _post(self, ctx: SlashContext, product: Product, channel_id: str, *,
                    purge: bool) -> posting.Posted:
        bot = self.bot_ctx
        counts = await bot.api.stock_counts()
        settings = await bot.settings()
        posted = await posting.post_product(
            bot.chat, product, counts, settings, channel_id, purge=purge, bot_id=bot.chat.bot_id
        )
        await bot.api.record_posts(product.id, posting.posts_after(product, posted),
                                   interaction=interaction_of(ctx))
        return posted

    @loja(
        sub_cmd_name="repostar",
        sub_cmd_description="Publicar de novo (com preços e estoque atuais) onde o produto já está",
    )
    @interactions.slash_option("produto", "Nome ou ID", OptionType.STRING, required=True)
    @interactions.slash_option(
        "forcar",
        "Apagar também publicações antigas não registradas deste produto nesses canais",
        OptionType.BOOLEAN,
    )
    @friendly
    async def repostar(self, ctx: SlashContext, produto: str, forcar: bool = False) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        product = await self._product(produto)
        channels = []
        for post in list(product.posts):
            if not forcar:
                await bot.chat.delete_message(post["channel_id"], post["message_id"])
                if post.get("banner_message_id"):
                    await bot.chat.delete_message(post["channel_id"], post["banner_message_id"])
            # Each post is recorded as it is made: read the product again for the next one.
            current = await self._product(product.id)
            if not forcar:
                current.posts = [p for p in current.posts
                                 if p.get("channel_id") != post["channel_id"]]
            await self._post(ctx, current, post["channel_id"], purge=forcar)
            channels.append(f"<#{post['channel_id']}>")
        await ctx.send(t(language, "posted", channel=", ".join(channels) or "-"), ephemeral=True)

    # -- joining a server -----------------------------------------------------------------------

    @interactions.listen(interactions.events.GuildJoin)
    async def on_guild_join(self, event: Any) -> None:
        """A GUILD_CREATE for a server the bot was not in (after READY: the startup's guilds
        arrive before it): the instance's welcome, with its banner, where it can post."""
        if not self.bot.is_ready:
            return
        await welcome(self.bot_ctx, str(event.guild_id),
                      getattr(self.bot.cache.get_guild(event.guild_id), "_system_channel_id", None))

    # -- portal, permcheck ----------------------------------------------------------------------

    @loja(sub_cmd_name="portal", sub_cmd_description="Link do painel da sua loja")
    @friendly
    async def portal(self, ctx: SlashContext) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx, bind=True)
        settings = await bot.settings()
        base = str(settings.get("portal_url") or "").rstrip("/")
        url = f"{base}/dashboard?instance={bot.instance_id}" if base else "-"
        await ctx.send(t(language, "portal_link", url=url), ephemeral=True)

    @loja(
        sub_cmd_name="permcheck",
        sub_cmd_description="Conferir as permissões do bot nos canais configurados",
    )
    @friendly
    async def permcheck(self, ctx: SlashContext) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        settings = await bot.settings(fresh=True)
        report = await permcheck.check(bot.chat, str(ctx.guild_id), settings)
        await ctx.send(permcheck.render(report, language)[:2000], ephemeral=True)

    # -- cupom ---------------------------------------------------------------------------------

    @loja(
        group_name="cupom",
        group_description="Cupons",
        sub_cmd_name="criar",
        sub_cmd_description="Criar um cupom",
    )
    @interactions.slash_option(
        "codigo", "Código (letras, números, - e _)", OptionType.STRING, required=True, max_length=32
    )
    @interactions.slash_option(
        "tipo",
        "Percentual ou valor fixo",
        OptionType.STRING,
        required=True,
        choices=[
            SlashCommandChoice("Percentual", "percent"),
            SlashCommandChoice("Valor fixo", "fixed"),
        ],
    )
    @interactions.slash_option(
        "valor", "Ex.: 10 (%) ou 5,00 (R$)", OptionType.STRING, required=True
    )
    @interactions.slash_option("minimo", "Pedido mínimo, ex.: 50,00", OptionType.STRING)
    @interactions.slash_option("usos", "Máximo de usos", OptionType.INTEGER, min_value=1)
    @interactions.slash_option(
        "por_comprador", "Usos por comprador", OptionType.INTEGER, min_value=1
    )
    @friendly
    async def cupom_criar(
        self,
        ctx: SlashContext,
        codigo: str,
        tipo: str,
        valor: str,
        minimo: str | None = None,
        usos: int | None = None,
        por_comprador: int | None = None,
    ) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        if tipo == "percent":
            if not valor.strip().isdigit():
                raise InvalidInput("invalid_field", field="valor")
            amount = int(valor.strip())
        else:
            amount = parse_brl(valor)
        coupon = await bot.api.create_coupon(
            {
                "code": codigo,
                "kind": tipo,
                "value": amount,
                "min_order_cents": parse_brl(minimo) if minimo else 0,
                "max_uses": usos,
                "per_buyer_limit": por_comprador,
            },
            interaction=interaction_of(ctx),
        )
        await ctx.send(t(language, "coupon_created", code=coupon.code), ephemeral=True)

    @loja(
        group_name="cupom",
        group_description="Cupons",
        sub_cmd_name="listar",
        sub_cmd_description="Listar cupons",
    )
    @friendly
    async def cupom_listar(self, ctx: SlashContext) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        coupons = await bot.api.list_coupons(interaction=interaction_of(ctx))
        if not coupons:
            await ctx.send(t(language, "no_coupons"), ephemeral=True)
            return
        lines = []
        for c in coupons:
            value = f"{c.value}%" if c.kind.value == "percent" else format_brl(c.value)
            limit = f"/{c.max_uses}" if c.max_uses else ""
            state = "✅" if c.active else "⛔"
            lines.append(f"{state} **{c.code}** — {value} · usos {c.uses}{limit}")
        await ctx.send("\n".join(lines)[:2000], ephemeral=True)

    @loja(
        group_name="cupom",
        group_description="Cupons",
        sub_cmd_name="desativar",
        sub_cmd_description="Desativar um cupom",
    )
    @interactions.slash_option("codigo", "Código", OptionType.STRING, required=True)
    @friendly
    async def cupom_desativar(self, ctx: SlashContext, codigo: str) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        coupon = await bot.api.set_coupon_active(codigo, False, interaction=interaction_of(ctx))
        await ctx.send(t(language, "coupon_disabled", code=coupon.code), ephemeral=True)

    # -- vendas / config -----------------------------------------------------------------------

    @loja(sub_cmd_name="vendas", sub_cmd_description="Resumo das vendas")
    @friendly
    async def vendas(self, ctx: SlashContext) -> None:
        bot = self.bot_ctx
        language = await self._guard(ctx)
        orders = await bot.api.list_orders(interaction=interaction_of(ctx))
        paid = [o for o in orders if o.status.value in ("paid", "delivered", "waiting_stock")]
        lines = [
            t(
                language,
                "sales_summary",
                count=len(paid),
                total=format_brl(sum(o.total_cents for o in paid)),
            )
        ]
        for o in sorted(paid, key=lambda o: o.paid_at or "", reverse=True)[:10]:
            lines.append(
                f"• `{o.id}` <@{o.buyer_id}> {format_brl(o.total_cents)} "
                f"{ui.discord_time(o.paid_at, 'R')} · {o.status.value}"
            )
        await ctx.send("\n".join(lines)[:2000], ephemeral=True)

    @loja(sub_cmd_name="config", sub_cmd_description="Canais, cargos, idioma e tempo do carrinho")
    @interactions.slash_option("canal_logs", "Canal de logs", OptionType.CHANNEL)
    @interactions.slash_option("canal_vendas", "Canal de anúncios de vendas", OptionType.CHANNEL)
    @interactions.slash_option("canal_feedback", "Canal de feedback", OptionType.CHANNEL)
    @interactions.slash_option(
        "canal_equipe", "Canal da equipe (entregas manuais)", OptionType.CHANNEL
    )
    @interactions.slash_option(
        "categoria_carrinhos", "Categoria dos canais de carrinho", OptionType.CHANNEL
    )
    @interactions.slash_option("cargo_comprador", "Cargo dado a quem compra", OptionType.ROLE)
    @interactions.slash_option(
        "minutos_carrinho",
        "Tempo de reserva do carrinho (minutos)",
        OptionType.INTEGER,
        min_value=1,
        max_value=1440,
    )
    @interactions.slash_option("canal_produtos", "Canal de produtos", OptionType.CHANNEL)
    @interactions.slash_option(
        "cargo_estoque", "Cargo mencionado quando um produto esgota", OptionType.ROLE
    )
    @interactions.slash_option(
        "minutos_inatividade",
        "Carrinho parado expira após (minutos; 0 desliga)",
        OptionType.INTEGER,
        min_value=0,
        max_value=1440,
    )
    @interactions.slash_option(
        "avisos_equipe", "Avisos da loja no canal de logs", OptionType.BOOLEAN
    )
    @interactions.slash_option(
        "idioma",
        "Idioma do bot",
        OptionType.STRING,
        choices=[
            SlashCommandChoice("Português (Brasil)", "pt-BR"),
            SlashCommandChoice("English", "en"),
        ],
    )
    @friendly
    async def config(
        self,
        ctx: SlashContext,
        canal_logs: Any = None,
        canal_vendas: Any = None,
        canal_feedback: Any = None,
        canal_equipe: Any = None,
        categoria_carrinhos: Any = None,
        cargo_comprador: Any = None,
        minutos_carrinho: int | None = None,
        idioma: str | None = None,
        canal_produtos: Any = None,
        cargo_estoque: Any = None,
        minutos_inatividade: int | None = None,
        avisos_equipe: bool | None = None,
    ) -> None:
        bot = self.bot_ctx
        await self._guard(ctx)
        options = {
            "canal_logs": canal_logs,
            "canal_vendas": canal_vendas,
            "canal_feedback": canal_feedback,
            "canal_equipe": canal_equipe,
            "categoria_carrinhos": categoria_carrinhos,
            "cargo_comprador": cargo_comprador,
            "minutos_carrinho": minutos_carrinho,
            "idioma": idioma,
            "canal_produtos": canal_produtos,
            "cargo_estoque": cargo_estoque,
        }
        mapping = {
            "canal_logs": "log_channel_id",
            "canal_vendas": "sales_channel_id",
            "canal_feedback": "feedback_channel_id",
            "canal_equipe": "staff_channel_id",
            "categoria_carrinhos": "cart_category_id",
            "cargo_comprador": "buyer_role_id",
            "canal_produtos": "products_channel_id",
            "cargo_estoque": "stock_alert_role_id",
        }
        changes: dict[str, Any] = {}
        for option, value in options.items():
            if option in mapping and value is not None:
                changes[mapping[option]] = str(value.id)
        if options.get("minutos_carrinho"):
            changes["cart_ttl_seconds"] = int(options["minutos_carrinho"]) * 60
        if options.get("idioma"):
            changes["language"] = options["idioma"]
        if minutos_inatividade is not None:
            changes["cart_idle_seconds"] = int(minutos_inatividade) * 60
        if avisos_equipe is not None:
            changes["staff_notifications"] = bool(avisos_equipe)
        settings = await bot.api.update_settings(changes, interaction=interaction_of(ctx))
        bot.forget_settings()
        await ctx.send(t(settings.get("language") or "pt-BR", "config_saved"), ephemeral=True)
