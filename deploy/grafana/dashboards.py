"""The Grafana dashboards, as code (grafana-foundation-sdk): `python deploy/grafana/dashboards.py`
writes deploy/grafana/dashboards/*.json; `--check` fails when a committed file is stale
(tests/deploy runs it). Every query uses only metrics nextbest exports (a test runs each
one against a real Prometheus scraping a real server).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prom_model

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
POLICY = 'policy=~"$policy"'
RATE = "$__rate_interval"


def query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .datasource(DATASOURCE)
        .range()
    )


def series(
    title: str,
    description: str,
    queries: list[prometheus.Dataquery],
    unit: str = "short",
    w: int = 8,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(w)
        .height(8)
        .line_width(1)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )
    for q in queries:
        panel = panel.with_target(q)
    return panel


def single(title: str, description: str, q: prometheus.Dataquery, unit: str) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(6)
        .height(5)
        .with_target(q.instant())
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def quantiles(metric: str, by: str = "") -> list[prometheus.Dataquery]:
    group = f"le{', ' + by if by else ''}"
    legend = f"{{{{{by}}}}} " if by else ""
    return [
        query(
            f"histogram_quantile({q}, sum by ({group}) "
            f"(rate({metric}_bucket{{{POLICY}}}[{RATE}])))",
            f"{legend}p{int(q * 100)}",
            ref,
        )
        for q, ref in ((0.5, "A"), (0.99, "B"))
    ]


def zero_filled(expr_by_policy: str, metric: str) -> str:
    """`expr` per policy, or 0 for policies that have none yet (a rare event's counter
    appears at its first occurrence: no line at all would read as "no data")."""
    return f"({expr_by_policy}) or (sum by (policy) (rate({metric}{{{POLICY}}}[{RATE}])) * 0)"


def overview() -> dash.Dashboard:
    decisions = "nextbest_decisions_total"
    joins = "nextbest_join_delay_seconds_count"
    policy_var = (
        dash.QueryVariable("policy")
        .label("policy")
        .datasource(DATASOURCE)
        .query("label_values(nextbest_model_version, policy)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )
    builder = (
        dash.Dashboard("nextbest")
        .uid("nextbest-overview")
        .description(
            "Is the policy learning, exploring within bounds, and healthy? "
            "See README 'Run it in production' for how to read it."
        )
        .tags(["nextbest"])
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(policy_var)
        .annotation(
            dash.AnnotationQuery()
            .name("Config changes")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("orange")
            .expr(
                f"sum by (policy, kind) (increase(nextbest_config_changes_total{{{POLICY}}}"
                "[1m])) > 0"
            )
        )
    )
    builder = (
        builder.with_row(dash.Row("Decisions"))
        .with_panel(
            series(
                "Decisions/s by action",
                "Decide answers per second, by the action returned ((inline): actions a "
                "request brought).",
                [
                    query(
                        f"sum by (action) (rate({decisions}{{{POLICY}}}[{RATE}]))",
                        "{{action}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            series(
                "Explored share vs ε",
                "Share of decisions that returned a non-greedy action, against the ε in "
                "force (per intent). The share stays at or below the largest ε.",
                [
                    query(
                        f'sum by (policy) (rate({decisions}{{{POLICY}, explored="true"}}'
                        f"[{RATE}])) / sum by (policy) (rate({decisions}{{{POLICY}}}[{RATE}]))",
                        "explored {{policy}}",
                    ),
                    query(
                        f"max by (policy, intent) (nextbest_exploration_epsilon{{{POLICY}}})",
                        "ε {{policy}} {{intent}}",
                        "B",
                    ),
                ],
                "percentunit",
            )
        )
        .with_panel(
            series(
                "Fallbacks/s",
                "Decisions where every candidate was masked and the policy's fallback action "
                "was returned.",
                [
                    query(
                        zero_filled(
                            f'sum by (policy) (rate({decisions}{{{POLICY}, fallback="true"}}'
                            f"[{RATE}]))",
                            decisions,
                        ),
                        "{{policy}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            series(
                "Masked/s by rule",
                "Actions removed before scoring, by safety rule (caller:excluded, "
                "caller:not_candidate: the caller's own masks).",
                [
                    query(
                        f"sum by (rule) (rate(nextbest_masked_total{{{POLICY}}}[{RATE}]))",
                        "{{rule}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            series(
                "Decide latency",
                "Time to serve one Decide, p50 and p99.",
                quantiles("nextbest_decide_latency_seconds"),
                "s",
            )
        )
        .with_panel(
            series(
                "Errors/s by gRPC code",
                "Error statuses answered, every policy (INVALID_ARGUMENT, NOT_FOUND: the "
                "caller's; INTERNAL, UNAVAILABLE: ours).",
                [
                    query(
                        f"sum by (method, code) (rate(nextbest_errors_total[{RATE}]))",
                        "{{method}} {{code}}",
                    )
                ],
                "reqps",
            )
        )
    )
    builder = (
        builder.with_row(dash.Row("Rewards"))
        .with_panel(
            series(
                "Rewards/s by status",
                "accepted: joined; duplicate: a repeated reward_id; late: after the join "
                "closed (kept, not learned).",
                [
                    query(
                        f"sum by (status) (rate(nextbest_rewards_total{{{POLICY}}}[{RATE}]))",
                        "{{status}}",
                    )
                ],
                "reqps",
            )
        )
        .with_panel(
            series(
                "Default-reward share",
                "Share of closed joins that got no reward in the window and were learned "
                "with reward.default. High: rewards are not arriving.",
                [
                    query(
                        zero_filled(
                            "sum by (policy) (rate(nextbest_default_rewards_total"
                            f"{{{POLICY}}}[{RATE}]))",
                            joins,
                        )
                        + f" / sum by (policy) (rate({joins}{{{POLICY}}}[{RATE}]))",
                        "{{policy}}",
                    )
                ],
                "percentunit",
            )
        )
        .with_panel(
            series(
                "Average reward and model version (is it learning?)",
                "Mean reward the closed joins settled on (left) while the model's version, "
                "the events it learned, grows (right). Learning: the mean rises, then "
                "flattens at a level above where it started.",
                [
                    query(
                        "sum by (policy) (rate(nextbest_joined_reward_sum"
                        f"{{{POLICY}}}[10m])) / sum by (policy) "
                        f"(rate(nextbest_joined_reward_count{{{POLICY}}}[10m]))",
                        "average reward {{policy}}",
                    ),
                    query(
                        f"max by (policy) (nextbest_model_version{{{POLICY}}})",
                        "model version {{policy}}",
                        "B",
                    ),
                ],
            ).override_by_regexp(
                "model version.*",
                [
                    model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                    model.DynamicConfigValue(id_val="unit", value="short"),
                ],
            )
        )
        .with_panel(
            heatmap.Panel()
            .title("Reward value distribution")
            .description("Values of the rewards received, per bucket of the histogram.")
            .datasource(DATASOURCE)
            .span(8)
            .height(8)
            .calculate(False)
            .with_target(
                query(
                    f"sum by (le) (increase(nextbest_reward_value_bucket{{{POLICY}}}[{RATE}]))",
                    "{{le}}",
                ).format(prom_model.PromQueryFormat.HEATMAP)
            )
        )
    )
    builder = (
        builder.with_row(dash.Row("Joins and model"))
        .with_panel(
            series(
                "Pending events",
                "Events waiting for their reward window to close. Steady when decisions are "
                "steady: decisions/s × reward.wait. In Redis mode every process reports the "
                "count in Redis: the largest is shown, not their sum.",
                [
                    query(
                        f"max by (policy) (nextbest_pending_events{{{POLICY}}})",
                        "{{policy}}",
                    )
                ],
            )
        )
        .with_panel(
            series(
                "Join delay",
                "From a decision to the close of its join: a reward with aggregation "
                "earliest closes it at once, else the window's end.",
                quantiles("nextbest_join_delay_seconds", "policy"),
                "s",
            )
        )
        .with_panel(
            series(
                "Learned events/s",
                "Events the model learned, and joined events not learned (deferred and "
                "never activated, or a mode that does not learn).",
                [
                    query(
                        "sum by (policy) (rate(nextbest_learned_events_total"
                        f"{{{POLICY}}}[{RATE}]))",
                        "learned {{policy}}",
                    ),
                    query(
                        zero_filled(
                            "sum by (policy) (rate(nextbest_skipped_events_total"
                            f"{{{POLICY}}}[{RATE}]))",
                            joins,
                        ),
                        "skipped {{policy}}",
                        "B",
                    ),
                ],
                "ops",
            )
        )
        .with_panel(
            single(
                "Model version",
                "Events the serving model learned.",
                query(f"max by (policy) (nextbest_model_version{{{POLICY}}})", "{{policy}}"),
                "short",
            )
        )
        .with_panel(
            single(
                "Since the last model update",
                "Time since the model last learned an event (since the process start "
                "when it has not yet).",
                query(
                    "time() - max by (policy) (nextbest_model_last_update_timestamp_seconds"
                    f"{{{POLICY}}})",
                    "{{policy}}",
                ),
                "s",
            )
        )
        .with_panel(
            single(
                "Join failures/s",
                "Joins that could not be closed (the decision log could not be written): "
                "each is retried.",
                query(
                    zero_filled(
                        f"sum by (policy) (rate(nextbest_join_failures_total{{{POLICY}}}[{RATE}]))",
                        decisions,
                    ),
                    "{{policy}}",
                ),
                "ops",
            )
        )
        .with_panel(
            single(
                "Config changes (24h)",
                "Changes of the policy's config version (also shown as annotations).",
                query(
                    f"sum by (policy) (increase(nextbest_config_changes_total{{{POLICY}}}[24h]))",
                    "{{policy}}",
                ),
                "short",
            )
        )
    )
    return redis_mode(builder)


def redis_mode(builder: dash.Dashboard) -> dash.Dashboard:
    """The Redis mode row: the learner's lag, and each serving replica's reach of Redis and
    its spool. No data in embedded mode, which exports none of these. Labels: policy, the
    scrape's instance (one per replica), kind and reason (fixed sets)."""
    replayed = "nextbest_spool_replayed_total"
    reachable = (
        statetimeline.Panel()
        .title("Redis reachable by replica")
        .description(
            "Whether each nextbest process reaches Redis. A serving replica that does not "
            "keeps deciding and spools what it acknowledges (see Spool by replica); the "
            "learner learns nothing meanwhile."
        )
        .datasource(DATASOURCE)
        .span(6)
        .height(8)
        .show_value(common.VisibilityMode.NEVER)
        .mappings(
            [
                model.ValueMap(
                    options={
                        "0": model.ValueMappingResult(text="unreachable", color="red", index=0),
                        "1": model.ValueMappingResult(text="reachable", color="green", index=1),
                    }
                )
            ]
        )
        .with_target(query("min by (instance) (nextbest_redis_reachable)", "{{instance}}"))
    )
    return (
        builder.with_row(dash.Row("Redis mode"))
        .with_panel(
            series(
                "Learner lag",
                "Joined events on the policy's stream in Redis that the learner has not read "
                "yet. Near 0: the learner keeps up. Growing: no learner runs or holds the "
                "lease, or it cannot keep up; the served model falls behind.",
                [
                    query(
                        f"max by (policy) (nextbest_learner_lag_events{{{POLICY}}})",
                        "{{policy}}",
                    )
                ],
                w=6,
            )
        )
        .with_panel(reachable)
        .with_panel(
            series(
                "Spool by replica",
                "What each serving replica holds in its data dir for Redis (bytes, left; "
                "decisions and queued rewards, right). 0 while Redis is reachable; at "
                "--spool-max-bytes the replica refuses calls.",
                [
                    query("sum by (instance) (nextbest_spool_bytes)", "{{instance}} bytes"),
                    query(
                        "sum by (instance) (nextbest_spool_records)", "{{instance}} records", "B"
                    ),
                ],
                "bytes",
                w=6,
            ).override_by_regexp(
                ".* records",
                [
                    model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                    model.DynamicConfigValue(id_val="unit", value="short"),
                ],
            )
        )
        .with_panel(
            series(
                "Spooled, replayed and dropped/s",
                "Decisions and rewards spooled while Redis was unreachable, handed over to "
                "Redis when it answered again, and dropped at the hand-over (by reason: e.g. "
                "an event id another replica used meanwhile).",
                [
                    query(
                        f"sum by (kind) (rate(nextbest_spooled_total[{RATE}]))",
                        "spooled {{kind}}",
                    ),
                    query(f"sum by (kind) (rate({replayed}[{RATE}]))", "replayed {{kind}}", "B"),
                    query(
                        "sum by (kind, reason) (rate(nextbest_spool_dropped_total"
                        f"[{RATE}])) or on (kind) (sum by (kind) (rate({replayed}[{RATE}])) * 0)",
                        "dropped {{kind}} {{reason}}",
                        "C",
                    ),
                ],
                "ops",
                w=6,
            )
        )
    )


DASHBOARDS = {"nextbest-overview.json": overview}


def render(name: str) -> str:
    built = DASHBOARDS[name]().build()
    for number, panel in enumerate(built.panels or [], start=1):  # stable, unique ids
        panel.id_val = number
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = args.out / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(
            f"stale: {', '.join(stale)}; run: python deploy/grafana/dashboards.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
