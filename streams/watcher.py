"""Following the registry: the stream swaps its champion, and starts or stops scoring a shadow,
when the aliases move; no restart.

Every worker must see every decision, so this is not a Faust agent (see :class:`ChampionWatcher`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from models import registry
from models.promotion import parse_event
from models.promotion.shadow import SHADOW_ALIAS
from models.registry import Champion
from parivision import schemas
from parivision.metrics import STREAM, Metrics, for_job
from parivision.settings import Settings
from streams.scoring import Scorer

log = logging.getLogger("parivision.stream")

# How often a worker also asks the registry for the champion, in case an event never arrived.
REGISTRY_RECHECK_S = 60.0
_RETRY_S = 5.0


class ChampionWatcher:
    """Swaps the scorer's champion when the registry's champion alias moves; no restart.

    Every worker must see every decision, so this is not a Faust agent: in the worker's consumer
    group the one partition of ``models.events`` would go to a single worker, and the others would
    never swap.  It reads the topic with a plain consumer outside any group, from the end as it is
    at startup: older events are already reflected in the alias the worker loaded, and one look at
    the alias right after the consumer is positioned covers a promotion that landed in between.
    The alias is the truth and an event only says when to look, so a duplicate or stale event
    changes nothing; a look every ``recheck_s`` seconds covers an event that never reached Kafka.

    Loading a version is blocking MLflow I/O, done in a thread while the agents keep scoring with
    the old champion; the swap itself is one assignment on the event loop, which falls between
    two micro-batches because each batch is scored without yielding to the loop.

    A version that cannot be served (:class:`models.registry.BadModelError`: its artifact missing
    or damaged, another feature set, answers that are not probabilities) is refused: the scorer
    keeps its champion, the reason is logged and ``model_loads{outcome="error"}`` counted.  The
    refusal is remembered in :attr:`refused`, so events and reconnections do not load it again;
    only the periodic registry check does, in case the version was repaired.
    """

    def __init__(
        self,
        settings: Settings,
        scorer: Scorer,
        *,
        recheck_s: float = REGISTRY_RECHECK_S,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.scorer = scorer
        self.metrics = metrics or for_job(STREAM)
        self.recheck_s = recheck_s
        self.topic = settings.topic(schemas.MODEL_EVENTS)
        self.swaps: list[tuple[str, str]] = []
        # Versions refused, and why; tried again only by the periodic registry check.
        self.refused: dict[str, str] = {}
        # The champion the last swap replaced: after a promotion it shadows the new one.
        self._replaced: Champion | None = None

    async def run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the broker went away: keep scoring, try again
                log.warning(
                    "reading %s failed (%s); retrying in %.0f s", self.topic, error, _RETRY_S
                )
                await asyncio.sleep(_RETRY_S)

    async def describe_first_champion(self) -> None:
        """Describe the champion the worker starts with (:func:`describe_champion`)."""
        await describe_champion(self.settings, self.scorer.champion, self.metrics)

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            # ensure_topics creates models.events with exactly one partition: one ordered log.
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            await consumer.seek_to_end(partition)
            await consumer.position(partition)  # fixed now, before the registry is read
            await self.check_registry("start")
            next_check = time.monotonic() + self.recheck_s
            while True:
                batches = await consumer.getmany(partition, timeout_ms=1000)
                for message in batches.get(partition, []):
                    await self.on_event(message.value)
                if time.monotonic() >= next_check:
                    await self.check_registry("periodic registry check", retry_refused=True)
                    next_check = time.monotonic() + self.recheck_s
        finally:
            await consumer.stop()

    async def on_event(self, value: bytes | None) -> None:
        event = parse_event(value, self.settings.registered_model())
        if event is None:
            return
        # Every decision may move the champion or the shadow alias; the aliases say which.
        await self.check_registry(f"{event['event']} event for v{event.get('version')}")

    async def check_registry(self, why: str, *, retry_refused: bool = False) -> None:
        """Follow both aliases: the champion's, then the shadow's."""
        await self.check_champion(why, retry_refused=retry_refused)
        await self.check_shadow(why, retry_refused=retry_refused)

    async def _load(self, version: str) -> Champion:
        """A version loaded from the registry (checked, in a thread), or the one in hand: after a
        promotion the shadow becomes the champion, and the champion replaced its shadow."""
        for model in (self.scorer.shadow, self.scorer.champion, self._replaced):
            if model is not None and model.version == version:
                return model
        return await asyncio.to_thread(registry.load_version, self.settings, version)

    async def check_shadow(self, why: str, *, retry_refused: bool = False) -> None:
        """Score beside the champion the version holding the shadow alias (none: no shadow).

        The shadow is never served: a version that cannot be loaded is logged and not
        shadowed, and the champion scores on as before.
        """
        name, scorer = self.settings.registered_model(), self.scorer
        try:
            version = await asyncio.to_thread(registry.alias_version, self.settings, SHADOW_ALIAS)
        except Exception as error:  # the registry is down: the next event or check asks again
            log.error("could not read the shadow alias of %s (%s): %s", name, why, error)
            return
        if version == scorer.champion.version:
            version = None  # the champion is not its own shadow
        current = scorer.shadow.version if scorer.shadow is not None else None
        if version == current:
            return
        if version is None:
            scorer.set_shadow(None)
            self.metrics["shadow_version"].set(0)
            log.info("no shadow of %s any more (%s); v%s was shadowing", name, why, current)
            return
        if version in self.refused and not retry_refused:
            return
        try:
            shadow = await self._load(version)
        except Exception as error:
            if isinstance(error, registry.BadModelError):
                self.refused[version] = error.reason
            log.error(
                "could not load v%s of %s to score in shadow (%s): %s", version, name, why, error
            )
            return
        scorer.set_shadow(shadow)
        self.metrics["shadow_version"].set(_number(version))
        log.info(
            "v%s of %s scores in shadow beside champion v%s (%s), not served",
            version,
            name,
            scorer.champion.version,
            why,
        )

    async def check_champion(self, why: str, *, retry_refused: bool = False) -> None:
        """Load the version holding the champion alias, if it is not the one scoring, and swap.

        A version refused before is not loaded again unless ``retry_refused``.
        """
        current = self.scorer.champion.version
        name = self.settings.registered_model()
        try:
            version = await asyncio.to_thread(registry.champion_version, self.settings)
        except Exception as error:  # the registry is down: the next event or check asks again
            log.error(
                "could not read the champion alias of %s (%s): %s; still scoring with v%s",
                name,
                why,
                error,
                current,
            )
            return
        if version is None or version == current:
            return
        if version in self.refused and not retry_refused:
            log.warning(
                "the champion alias of %s names v%s (%s), refused already: %s; still scoring "
                "with v%s, and trying v%s again at the next registry check (every %.0f s)",
                name,
                version,
                why,
                self.refused[version],
                current,
                version,
                self.recheck_s,
            )
            return
        try:
            champion = await self._load(version)
        except registry.BadModelError as error:
            self.refused[version] = error.reason
            self.metrics["model_loads"].labels(outcome="error").inc()
            log.error(
                "refused v%s as the champion of %s (%s): %s; still scoring with v%s",
                version,
                name,
                why,
                error,
                current,
            )
            return
        except Exception as error:  # the registry or its artifact store did not answer
            self.metrics["model_loads"].labels(outcome="error").inc()
            log.error(
                "could not load v%s, the new champion of %s (%s): %s; still scoring with v%s",
                version,
                name,
                why,
                error,
                current,
            )
            return
        self.refused.pop(version, None)
        previous = self.scorer.swap(champion)
        self._replaced = previous
        self.swaps.append((previous.version, champion.version))
        self.metrics["model_loads"].labels(outcome="ok").inc()
        self.metrics["model_swaps"].inc()
        await describe_champion(self.settings, champion, self.metrics)
        log.info(
            "champion of %s swapped from v%s to v%s (%s) after %d shots scored",
            self.settings.registered_model(),
            previous.version,
            champion.version,
            why,
            self.scorer.scored,
        )


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return 0.0


async def describe_champion(settings: Settings, champion: Champion, metrics: Metrics) -> None:
    """Export which champion scores, and the log loss it was promoted with (the reference its
    live log loss is compared with); the registry's answer is optional."""
    metrics["champion"].info({"model": champion.name, "version": str(champion.version)})
    try:
        reference = await asyncio.to_thread(registry.reference_log_loss, settings, champion.version)
    except Exception as error:  # the registry is down: the info above is still right
        log.warning("could not read the reference log loss of v%s: %s", champion.version, error)
        return
    if reference is not None:
        metrics["champion_reference_log_loss"].set(reference)
