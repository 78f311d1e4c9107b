// The dashboard: login, the four views, filters, routing by hash and auto-refresh. Every number
// shown comes from SQL run through api.query(); the SQL is written here, next to the panel
// that shows it, with the filters as placeholders ($1, $2, …) never spliced into the text.

import * as api from "./api.js";
import * as charts from "./charts.js";

const REFRESH_SECONDS = 60;
const DEFAULT_DAYS = 28;
const STATE_KEY = "healthai.dashboard.autorefresh";

// ---------------------------------------------------------------------------------------------
// Formatting

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const dayLabel = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

const fmt = {
  int: (v) => (v === null || v === undefined ? "–" : integer.format(v)),
  one: (v) => (v === null || v === undefined ? "–" : oneDecimal.format(v)),
  pct: (v) => (v === null || v === undefined ? "–" : `${oneDecimal.format(v)} %`),
  hours: (v) => (v === null || v === undefined ? "–" : `${oneDecimal.format(v)} h`),
  kg: (v) => (v === null || v === undefined ? "–" : Math.abs(v) < 0.05 ? "0.0 kg" : `${v > 0 ? "+" : ""}${oneDecimal.format(v)} kg`),
  day: (d) => dayLabel.format(new Date(`${d}T00:00:00Z`)),
  week: (d) => `wk of ${dayLabel.format(new Date(`${d}T00:00:00Z`))}`,
};

const num = (v) => (v === null || v === undefined || v === "" ? null : Number(v));
const isoDay = (v) => String(v).slice(0, 10);

function addDays(day, days) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

function daysBetween(from, to) {
  const out = [];
  for (let d = from; d <= to && out.length < 800; d = addDays(d, 1)) out.push(d);
  return out;
}

function weeksBetween(from, to) {
  const start = new Date(`${from}T00:00:00Z`);
  start.setUTCDate(start.getUTCDate() - ((start.getUTCDay() + 6) % 7));
  const out = [];
  for (let d = start.toISOString().slice(0, 10); d <= to && out.length < 200; d = addDays(d, 7)) out.push(d);
  return out;
}

/** Rows keyed by category → one series per value column, null where a category has no row. */
function seriesByCategory(rows, categories, key, columns) {
  const byKey = new Map(rows.map((r) => [isoDay(r[key]), r]));
  return columns.map(([column, name]) => ({
    name,
    values: categories.map((c) => (byKey.has(c) ? num(byKey.get(c)[column]) : null)),
  }));
}

/**
 * Long rows (category, series name, value) → one series per name, the names of `order` first.
 * A name of `order` keeps its colour whichever names are present.
 */
function pivot(rows, categories, key, nameColumn, valueColumn, order = []) {
  const names = [...new Set([...order.filter((n) => rows.some((r) => r[nameColumn] === n)), ...rows.map((r) => r[nameColumn])])];
  const index = new Map(categories.map((c, i) => [c, i]));
  return names.map((name, position) => {
    const values = categories.map(() => null);
    for (const r of rows) {
      if (r[nameColumn] !== name) continue;
      const i = index.get(isoDay(r[key]));
      if (i !== undefined) values[i] = (values[i] || 0) + num(r[valueColumn]);
    }
    const known = order.indexOf(name);
    return { name: label(name), values, colour: known >= 0 ? known : order.length + position };
  });
}

const label = (name) => String(name).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

// ---------------------------------------------------------------------------------------------
// SQL with the filters as parameters

/**
 * One query's placeholders. A placeholder is numbered the first time it is used, so the
 * parameter list holds exactly the values the SQL refers to.
 */
class Sql {
  constructor(filters) {
    this.filters = filters;
    this.params = [];
    this.numbers = new Map();
  }

  param(key, value) {
    if (!this.numbers.has(key)) {
      this.params.push(value);
      this.numbers.set(key, this.params.length);
    }
    return `$${this.numbers.get(key)}`;
  }

  get from() {
    return `CAST(${this.param("from", `${this.filters.from}T00:00:00`)} AS TIMESTAMP)`;
  }

  get to() {
    return `CAST(${this.param("to", `${addDays(this.filters.to, 1)}T00:00:00`)} AS TIMESTAMP)`;
  }

  /** The subject and group filters on `alias.subject_id` ("TRUE" when there are none). */
  who(alias = "") {
    const column = `${alias ? `${alias}.` : ""}subject_id`;
    const parts = [];
    if (this.filters.subject) parts.push(`${column} = ${this.param("subject", Number(this.filters.subject))}`);
    if (this.filters.group) {
      parts.push(`${column} IN (SELECT subject_id FROM meta.group_members WHERE group_id = ${this.param("group", Number(this.filters.group))})`);
    }
    return parts.length ? parts.join(" AND ") : "TRUE";
  }

  /** The date range on `alias.column` plus the subject and group filters. */
  where(alias = "", column = "time") {
    const c = `${alias ? `${alias}.` : ""}${column}`;
    const who = this.who(alias);
    return `${c} >= ${this.from} AND ${c} < ${this.to}${who === "TRUE" ? "" : ` AND ${who}`}`;
  }
}

// Meals with their nutrients: the values ingest stored, or else the food table's per 100 g
// (when the session has the food table).
const mealsWithNutrients = (q) =>
  hasTable("reference.foods")
    ? `
  SELECT m.subject_id, m.time, m.meal, m.food_id, m.quantity_g,
         coalesce(m.energy_kcal, f.energy_kcal * m.quantity_g / 100) AS kcal,
         coalesce(m.protein_g, f.protein_g * m.quantity_g / 100) AS protein_g,
         coalesce(m.carbs_g, f.carbs_g * m.quantity_g / 100) AS carbs_g,
         coalesce(m.fat_g, f.fat_g * m.quantity_g / 100) AS fat_g
  FROM meals m LEFT JOIN reference.foods f ON f.food_id = m.food_id
  WHERE ${q.where("m")}`
    : `
  SELECT subject_id, time, meal, food_id, quantity_g, energy_kcal AS kcal, protein_g, carbs_g, fat_g
  FROM meals WHERE ${q.where()}`;

// A subject's maximum heart rate: recorded, or else 220 − age.
const MAX_HR = "coalesce(CAST(s.max_hr AS DOUBLE), 220.0 - (date_part('year', now()) - s.birth_year), 190.0)";

// Sleep per subject and night (the UTC day it ends), from the source with the most detail
// when a phone and a ring both recorded the same night.
const sleepNights = (q) => `
  stages AS (
    SELECT subject_id, source, CAST(date_trunc('day', end_time) AS DATE) AS night, stage,
           sum(CAST(end_time AS BIGINT) - CAST(time AS BIGINT)) / 3.6e12 AS hours
    FROM sleep
    WHERE time >= ${q.from} - INTERVAL '1 day' AND time < ${q.to}
      AND end_time >= ${q.from} AND end_time < ${q.to} AND ${q.who()}
    GROUP BY 1, 2, 3, 4),
  per_source AS (
    SELECT subject_id, night, source,
           max(CASE WHEN stage IN ('light', 'deep', 'rem') THEN 1 ELSE 0 END) AS staged,
           sum(CASE WHEN stage IN ('light', 'deep', 'rem', 'asleep') THEN hours ELSE 0 END) AS asleep
    FROM stages GROUP BY 1, 2, 3),
  chosen AS (
    SELECT subject_id, night, source, asleep FROM (
      SELECT subject_id, night, source, asleep,
             row_number() OVER (PARTITION BY subject_id, night ORDER BY staged DESC, asleep DESC, source) AS pick
      FROM per_source) WHERE pick = 1)`;

// ---------------------------------------------------------------------------------------------
// Views. A panel's `load` returns the spec of its chart (see charts.js); `chart` names it.

const OVERVIEW = {
  id: "overview",
  title: "Overview",
  intro: "Who is sending data, how much, and how clean it arrives.",
  kpis: [
    {
      id: "active-subjects",
      title: "Active subjects",
      async load(ctx) {
        const q = ctx.sql();
        const [row] = await ctx.query(q, `
          SELECT (SELECT count(DISTINCT subject_id) FROM (
                    SELECT subject_id FROM heart_rate WHERE ${q.where()}
                    UNION ALL SELECT subject_id FROM steps WHERE ${q.where()}
                    UNION ALL SELECT subject_id FROM meals WHERE ${q.where()}
                    UNION ALL SELECT subject_id FROM body WHERE ${q.where()})) AS active,
                 (SELECT count(*) FROM meta.subjects WHERE ${q.who()}) AS enrolled`);
        return { value: fmt.int(num(row.active)), detail: `of ${fmt.int(num(row.enrolled))} enrolled, in the period` };
      },
    },
    {
      id: "data-volume",
      title: "Readings in the period",
      async load(ctx) {
        const rows = await ctx.shared("volume", volumeByDay);
        const total = rows.reduce((t, r) => t + num(r.readings), 0);
        const streams = new Set(rows.map((r) => r.stream)).size;
        return { value: fmt.int(total), detail: `across ${streams} stream${streams === 1 ? "" : "s"}` };
      },
    },
    {
      id: "ingest-health",
      title: "Ingest batches (30 days)",
      async load(ctx) {
        const q = ctx.sql();
        const [row] = await ctx.query(q, `
          SELECT count(*) AS batches,
                 sum(CASE WHEN status = 'committed' THEN 1 ELSE 0 END) AS committed,
                 sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed
          FROM system.ingest_batches
          WHERE started_at >= (SELECT max(started_at) FROM system.ingest_batches) - INTERVAL '30 days'`);
        const failed = num(row.failed) || 0;
        return {
          value: fmt.int(num(row.batches)),
          detail: `${fmt.int(num(row.committed) || 0)} committed · ${fmt.int(failed)} failed`,
          tone: failed > 0 ? "bad" : "good",
        };
      },
    },
    {
      id: "rows-accepted",
      title: "Rows accepted (30 days)",
      async load(ctx) {
        const q = ctx.sql();
        const [row] = await ctx.query(q, `
          SELECT sum(rows_in) AS rows_in, sum(rows_accepted) AS accepted,
                 sum(rows_rejected) AS rejected, sum(rows_corrected) AS corrected
          FROM system.ingest_batches
          WHERE started_at >= (SELECT max(started_at) FROM system.ingest_batches) - INTERVAL '30 days'`);
        const rowsIn = num(row.rows_in) || 0;
        const share = rowsIn ? (100 * (num(row.accepted) || 0)) / rowsIn : null;
        return {
          value: fmt.pct(share),
          detail: `${fmt.int(num(row.rejected) || 0)} rejected · ${fmt.int(num(row.corrected) || 0)} corrected`,
          tone: share !== null && share < 99 ? "bad" : "good",
        };
      },
    },
  ],
  panels: [
    {
      id: "active-per-day",
      title: "Active subjects per day",
      description: "Subjects with heart-rate, step, meal or weight data that day (UTC).",
      chart: "line",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT day, count(DISTINCT subject_id) AS subjects
          FROM (${["heart_rate", "steps", "meals", "body"]
            .map((stream) => `SELECT subject_id, CAST(date_trunc('day', time) AS DATE) AS day
                              FROM ${stream} WHERE ${q.where()} GROUP BY 1, 2`)
            .join(" UNION ALL ")})
          GROUP BY 1 ORDER BY 1`);
        const days = ctx.days();
        return { categories: days, series: seriesByCategory(rows, days, "day", [["subjects", "Active subjects"]]), xFormat: fmt.day, format: fmt.int, zero: true, yLabel: "subjects" };
      },
    },
    {
      id: "volume-per-day",
      title: "Readings per day by stream",
      description: "Rows stored per day; heart rate, one reading a minute, dominates.",
      chart: "stackedBar",
      async load(ctx) {
        const rows = await ctx.shared("volume", volumeByDay);
        const days = ctx.days();
        return { categories: days, series: pivot(rows, days, "day", "stream", "readings", STREAMS), xFormat: fmt.day, format: fmt.int };
      },
    },
    {
      id: "ingest-batches",
      title: "Ingest batches per day",
      description: "Batches by outcome, by day of ingest, over the last 30 days with activity.",
      chart: "stackedBar",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT CAST(date_trunc('day', started_at) AS DATE) AS day, status, count(*) AS batches
          FROM system.ingest_batches
          WHERE started_at >= (SELECT max(started_at) FROM system.ingest_batches) - INTERVAL '30 days'
          GROUP BY 1, 2 ORDER BY 1`);
        const days = [...new Set(rows.map((r) => isoDay(r.day)))].sort();
        return { categories: days, series: pivot(rows, days, "day", "status", "batches", ["committed", "failed", "running"]), xFormat: fmt.day, format: fmt.int };
      },
    },
    {
      id: "quality-over-time",
      title: "Data quality by ingest day",
      description: "Share of rows accepted, and average completeness of optional values.",
      chart: "line",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          WITH b AS (
            SELECT batch_id, CAST(date_trunc('day', started_at) AS DATE) AS day, rows_in, rows_accepted
            FROM system.ingest_batches
            WHERE started_at >= (SELECT max(started_at) FROM system.ingest_batches) - INTERVAL '30 days'),
          c AS (
            SELECT b.day, avg(r.completeness) AS completeness
            FROM system.quality_reports r JOIN b ON b.batch_id = r.batch_id
            WHERE r.rule = 'completeness' GROUP BY 1)
          SELECT b.day, 100.0 * sum(b.rows_accepted) / nullif(sum(b.rows_in), 0) AS accepted_pct,
                 100.0 * max(c.completeness) AS completeness_pct
          FROM b LEFT JOIN c ON c.day = b.day GROUP BY b.day ORDER BY b.day`);
        const days = rows.map((r) => isoDay(r.day));
        return {
          categories: days,
          series: seriesByCategory(rows, days, "day", [["accepted_pct", "Rows accepted"], ["completeness_pct", "Completeness"]]),
          xFormat: fmt.day,
          format: fmt.pct,
          zero: true,
        };
      },
    },
    {
      id: "quality-issues",
      title: "Cleaning by stream and rule",
      description: "Rows rejected, corrected or flagged in the last 30 days of ingest; the ten largest. Orange: some rows rejected.",
      chart: "hbar",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT r.stream, r.column_name, r.rule, sum(r.rows_rejected) AS rejected,
                 sum(r.rows_corrected) AS corrected, sum(r.rows_flagged) AS flagged
          FROM system.quality_reports r JOIN system.ingest_batches b ON b.batch_id = r.batch_id
          WHERE b.started_at >= (SELECT max(started_at) FROM system.ingest_batches) - INTERVAL '30 days'
          GROUP BY 1, 2, 3
          HAVING sum(r.rows_rejected) + sum(r.rows_corrected) + sum(r.rows_flagged) > 0
          ORDER BY sum(r.rows_rejected) + sum(r.rows_corrected) + sum(r.rows_flagged) DESC
          LIMIT 10`);
        return {
          items: rows.map((r) => ({
            label: `${r.stream}.${r.column_name} ${r.rule}`,
            value: num(r.rejected) + num(r.corrected) + num(r.flagged),
            note: `${fmt.int(num(r.rejected))} rejected, ${fmt.int(num(r.corrected))} corrected, ${fmt.int(num(r.flagged))} flagged`,
            colour: num(r.rejected) > 0 ? 1 : 0,
          })),
          format: fmt.int,
          labelName: "Stream, column and rule",
          valueName: "Rows",
          emptyText: "No row needed cleaning.",
        };
      },
    },
  ],
};

const STREAMS = ["heart_rate", "steps", "sleep", "meals", "body", "workouts", "active_energy"];

function volumeByDay(ctx) {
  const q = ctx.sql();
  const parts = STREAMS.map((s) => `SELECT '${s}' AS stream, time FROM ${s} WHERE ${q.where()}`);
  return ctx.query(q, `
    SELECT CAST(date_trunc('day', time) AS DATE) AS day, stream, count(*) AS readings
    FROM (${parts.join("\n UNION ALL ")})
    GROUP BY 1, 2 ORDER BY 1, 2`);
}

// Goals: the metrics the dashboard can measure, as one value per subject and day.
const GOAL_METRICS = {
  steps: { name: "Steps", level: false, sql: (q) => `
    SELECT subject_id, CAST(date_trunc('day', time) AS DATE) AS day, 'steps' AS metric, CAST(sum(count) AS DOUBLE) AS value
    FROM steps WHERE ${q.where()} GROUP BY 1, 2` },
  workouts: { name: "Workouts", level: false, sql: (q) => `
    SELECT subject_id, CAST(date_trunc('day', time) AS DATE) AS day, 'workouts' AS metric, CAST(count(*) AS DOUBLE) AS value
    FROM workouts WHERE ${q.where()} GROUP BY 1, 2` },
  energy_kcal: { name: "Energy kcal", level: false, sql: (q) => `
    SELECT subject_id, CAST(date_trunc('day', time) AS DATE) AS day, 'energy_kcal' AS metric, sum(kcal) AS value
    FROM (${mealsWithNutrients(q)}) WHERE kcal IS NOT NULL GROUP BY 1, 2` },
  sleep_hours: { name: "Sleep hours", level: false, sql: (q) => `
    SELECT subject_id, night AS day, 'sleep_hours' AS metric, max(hours) AS value FROM (
      SELECT subject_id, source, CAST(date_trunc('day', end_time) AS DATE) AS night,
             sum(CAST(end_time AS BIGINT) - CAST(time AS BIGINT)) / 3.6e12 AS hours
      FROM sleep WHERE ${q.where()} AND stage IN ('light', 'deep', 'rem', 'asleep') GROUP BY 1, 2, 3)
    GROUP BY 1, 2` },
  active_minutes: { name: "Active minutes", level: false, sql: (q) => `
    SELECT h.subject_id, CAST(date_trunc('day', h.time) AS DATE) AS day, 'active_minutes' AS metric,
           CAST(count(DISTINCT CASE WHEN h.bpm >= 0.64 * ${MAX_HR} THEN date_trunc('minute', h.time) END) AS DOUBLE) AS value
    FROM heart_rate h JOIN meta.subjects s ON s.subject_id = h.subject_id
    WHERE ${q.where("h")} GROUP BY 1, 2` },
  weight_kg: { name: "Weight kg", level: true, sql: (q) => `
    SELECT subject_id, CAST(date_trunc('day', time) AS DATE) AS day, 'weight_kg' AS metric, avg(weight_kg) AS value
    FROM body WHERE ${q.where()} AND weight_kg IS NOT NULL GROUP BY 1, 2` },
  resting_hr: { name: "Resting HR", level: true, sql: (q) => `
    SELECT subject_id, CAST(date_trunc('day', hour) AS DATE) AS day, 'resting_hr' AS metric, min(bpm) AS value FROM (
      SELECT subject_id, date_trunc('hour', time) AS hour, avg(bpm) AS bpm
      FROM heart_rate WHERE ${q.where()} GROUP BY 1, 2 HAVING count(*) >= 6)
    GROUP BY 1, 2` },
};

const PROGRESSION = {
  id: "progression",
  title: "User progression",
  intro: "Goals, weight and resting heart rate of the selected subjects.",
  panels: [
    {
      id: "goal-progress",
      title: "Goal attainment",
      description: "Share of complete periods (days, weeks, months) in which each goal was met.",
      chart: "hbar",
      async load(ctx) {
        const list = ctx.sql();
        const goals = await ctx.query(list, `SELECT DISTINCT metric FROM meta.goals WHERE ${list.who()}`);
        const metrics = goals.map((g) => g.metric).filter((m) => GOAL_METRICS[m]);
        if (!metrics.length) return { items: [], emptyText: "No goals the dashboard can measure are set for this selection." };
        const q = ctx.sql();
        const levels = Object.keys(GOAL_METRICS).filter((m) => GOAL_METRICS[m].level).map((m) => `'${m}'`).join(", ");
        const rows = await ctx.query(q, `
          WITH daily AS (${metrics.map((m) => GOAL_METRICS[m].sql(q)).join("\n UNION ALL ")}),
          g AS (SELECT goal_id, subject_id, metric, target, comparator, period, starts_on, ends_on
                FROM meta.goals WHERE ${q.who()}),
          v AS (
            SELECT g.goal_id, g.subject_id, g.metric, g.target, g.comparator, g.period, d.day, d.value,
                   CASE g.period
                     WHEN 'day' THEN CAST(d.day AS TIMESTAMP)
                     WHEN 'week' THEN date_trunc('week', CAST(d.day AS TIMESTAMP))
                     WHEN 'month' THEN date_trunc('month', CAST(d.day AS TIMESTAMP))
                     ELSE CAST(g.starts_on AS TIMESTAMP) END AS bucket
            FROM g JOIN daily d ON d.subject_id = g.subject_id AND d.metric = g.metric
             AND d.day >= g.starts_on AND (g.ends_on IS NULL OR d.day <= g.ends_on)),
          p AS (
            SELECT goal_id, subject_id, metric, target, comparator, period, bucket,
                   CASE WHEN metric IN (${levels}) THEN last_value(value ORDER BY day) ELSE sum(value) END AS value
            FROM v
            WHERE period IN ('day', 'total')
               OR (period = 'week' AND bucket >= ${q.from} AND bucket + INTERVAL '7 days' <= ${q.to})
               OR (period = 'month' AND bucket >= ${q.from} AND bucket + INTERVAL '1 month' <= ${q.to})
            GROUP BY 1, 2, 3, 4, 5, 6, 7)
          SELECT p.goal_id, coalesce(s.display_name, s.pseudonym) AS subject, p.metric, p.target,
                 p.comparator, p.period, count(*) AS periods,
                 sum(CASE WHEN (p.comparator = 'at_least' AND p.value >= p.target)
                            OR (p.comparator = 'at_most' AND p.value <= p.target) THEN 1 ELSE 0 END) AS met,
                 last_value(p.value ORDER BY p.bucket) AS latest
          FROM p JOIN meta.subjects s ON s.subject_id = p.subject_id
          GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 3, 2`);
        const goalText = (r) => `${GOAL_METRICS[r.metric].name} ${r.comparator === "at_least" ? "≥" : "≤"} ${fmt.int(num(r.target))}${r.period === "total" ? "" : ` / ${r.period}`}`;
        if (ctx.filters.subject) {
          return goalItems(rows.map((r) => ({
            label: goalText(r),
            value: (100 * num(r.met)) / num(r.periods),
            note: `met ${fmt.int(num(r.met))} of ${fmt.int(num(r.periods))} ${r.period === "total" ? "times" : `${r.period}s`}, latest ${fmt.one(num(r.latest))}`,
          })));
        }
        const byMetric = new Map();
        for (const r of rows) {
          const key = `${r.metric}|${r.comparator}|${r.period}`;
          const m = byMetric.get(key) || { metric: r.metric, comparator: r.comparator, period: r.period, shares: [], subjects: new Set() };
          m.shares.push(num(r.met) / num(r.periods));
          m.subjects.add(r.subject);
          byMetric.set(key, m);
        }
        return goalItems([...byMetric.values()].map((m) => ({
          label: `${GOAL_METRICS[m.metric].name} ${m.comparator === "at_least" ? "≥" : "≤"} target${m.period === "total" ? "" : ` / ${m.period}`}`,
          value: (100 * m.shares.reduce((a, b) => a + b, 0)) / m.shares.length,
          note: `average over ${m.subjects.size} subject${m.subjects.size === 1 ? "" : "s"}`,
        })));
      },
    },
    {
      id: "weight-trend",
      title: "Weight trend",
      description: "Change since each subject's first weigh-in of the period, averaged per day (one subject: weight in kg).",
      chart: "line",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          WITH w AS (
            SELECT subject_id, CAST(date_trunc('day', time) AS DATE) AS day, avg(weight_kg) AS kg
            FROM body WHERE ${q.where()} AND weight_kg IS NOT NULL GROUP BY 1, 2),
          b AS (SELECT subject_id, day, kg, first_value(kg) OVER (PARTITION BY subject_id ORDER BY day) AS first_kg FROM w)
          SELECT day, avg(kg) AS weight_kg, avg(kg - first_kg) AS change_kg, count(*) AS subjects
          FROM b GROUP BY day ORDER BY day`);
        const days = ctx.days();
        const single = Boolean(ctx.filters.subject);
        return {
          categories: days,
          series: seriesByCategory(rows, days, "day", [single ? ["weight_kg", "Weight (kg)"] : ["change_kg", "Average change (kg)"]]),
          xFormat: fmt.day,
          format: single ? (v) => `${fmt.one(v)} kg` : fmt.kg,
          zero: !single,
        };
      },
    },
    {
      id: "resting-hr",
      title: "Resting heart rate",
      description: "Per subject and day, the lowest hourly average heart rate; the line is their mean.",
      chart: "line",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          WITH h AS (
            SELECT subject_id, date_trunc('hour', time) AS hour, avg(bpm) AS bpm
            FROM heart_rate WHERE ${q.where()} GROUP BY 1, 2 HAVING count(*) >= 6),
          d AS (SELECT subject_id, CAST(date_trunc('day', hour) AS DATE) AS day, min(bpm) AS resting FROM h GROUP BY 1, 2)
          SELECT day, avg(resting) AS resting_bpm, min(resting) AS lowest, max(resting) AS highest
          FROM d GROUP BY day ORDER BY day`);
        const days = ctx.days();
        const single = Boolean(ctx.filters.subject);
        return {
          categories: days,
          series: seriesByCategory(rows, days, "day", single ? [["resting_bpm", "Resting HR"]] : [["resting_bpm", "Mean"], ["lowest", "Lowest subject"], ["highest", "Highest subject"]]),
          xFormat: fmt.day,
          format: fmt.one,
          yLabel: "bpm",
        };
      },
    },
  ],
};

function goalItems(items) {
  return {
    items: items.sort((a, b) => b.value - a.value),
    format: (v) => `${integer.format(v)} %`,
    max: 100,
    labelName: "Goal",
    valueName: "Periods met",
    emptyText: "No complete goal period in the selected dates.",
  };
}

const NUTRITION = {
  id: "nutrition",
  title: "Nutrition habits",
  intro: "What and when the selected subjects eat, from their meal logs and the food tables.",
  panels: [
    {
      id: "daily-energy",
      title: "Daily energy intake",
      description: "Average kilocalories per subject who logged meals that day.",
      chart: "bar",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT CAST(date_trunc('day', time) AS DATE) AS day, sum(kcal) / count(DISTINCT subject_id) AS kcal
          FROM (${mealsWithNutrients(q)}) WHERE kcal IS NOT NULL GROUP BY 1 ORDER BY 1`);
        const days = ctx.days();
        return { categories: days, series: seriesByCategory(rows, days, "day", [["kcal", "Energy (kcal)"]]), xFormat: fmt.day, format: fmt.int, yLabel: "kcal", emptyText: "No meal with known nutrients in this selection." };
      },
    },
    {
      id: "macro-split",
      title: "Macronutrient split",
      description: "Share of energy from protein and carbohydrates (4 kcal/g) and fat (9 kcal/g), per day.",
      chart: "proportionBar",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT CAST(date_trunc('day', time) AS DATE) AS day,
                 4 * sum(protein_g) AS protein, 4 * sum(carbs_g) AS carbohydrates, 9 * sum(fat_g) AS fat
          FROM (${mealsWithNutrients(q)}) GROUP BY 1 ORDER BY 1`);
        const days = ctx.days();
        return {
          categories: days,
          series: seriesByCategory(rows, days, "day", [["protein", "Protein"], ["carbohydrates", "Carbohydrates"], ["fat", "Fat"]]),
          xFormat: fmt.day,
          format: (v) => `${integer.format(v)} kcal`,
          emptyText: "No meal with known nutrients in this selection.",
        };
      },
    },
    {
      id: "meal-timing",
      title: "Meal timing",
      description: "Meals logged by hour of the day, in each subject's home time zone.",
      chart: "heatmap",
      async load(ctx) {
        const q = ctx.sql();
        // Hours are grouped in UTC per day and zone, then moved to local time here: the SQL
        // dialect has no per-row time-zone conversion.
        const rows = await ctx.query(q, `
          SELECT s.timezone, e.meal, CAST(date_trunc('hour', e.time) AS VARCHAR) AS utc_hour, count(*) AS meals
          FROM (SELECT DISTINCT subject_id, time, meal FROM meals WHERE ${q.where()}) e
          JOIN meta.subjects s ON s.subject_id = e.subject_id
          GROUP BY 1, 2, 3`);
        const order = ["breakfast", "lunch", "dinner", "snack"];
        const meals = [...new Set([...order.filter((m) => rows.some((r) => r.meal === m)), ...rows.map((r) => r.meal)])];
        const hours = [...Array(24).keys()];
        const values = meals.map(() => hours.map(() => 0));
        for (const r of rows) {
          const hour = localHour(r.utc_hour, r.timezone);
          values[meals.indexOf(r.meal)][hour] += num(r.meals);
        }
        return {
          rows: meals.map(label),
          columns: hours,
          values,
          columnFormat: (h) => `${String(h).padStart(2, "0")}h`,
          format: (v) => `${integer.format(v)} meal${v === 1 ? "" : "s"}`,
          rowName: "Meal",
          xLabel: "hour of day (local)",
        };
      },
    },
    {
      id: "top-foods",
      title: "Most eaten foods",
      description: "The ten foods logged most often, with the total quantity.",
      chart: "hbar",
      async load(ctx) {
        const q = ctx.sql();
        const foods = hasTable("reference.foods");
        const rows = await ctx.query(q, `
          SELECT m.food_id, ${foods ? "coalesce(max(f.name), m.food_id)" : "m.food_id"} AS name,
                 count(*) AS servings, sum(m.quantity_g) AS grams
          FROM meals m ${foods ? "LEFT JOIN reference.foods f ON f.food_id = m.food_id" : ""}
          WHERE ${q.where("m")} GROUP BY m.food_id ORDER BY servings DESC, name LIMIT 10`);
        return {
          items: rows.map((r) => ({ label: r.name, value: num(r.servings), note: `${fmt.one(num(r.grams) / 1000)} kg in total` })),
          format: fmt.int,
          labelName: "Food",
          valueName: "Servings",
        };
      },
    },
  ],
};

const zoneFormatters = new Map();

/** The hour (0–23) in `zone` of an instant written as UTC "YYYY-MM-DD[T ]HH…". */
function localHour(utc, zone) {
  const instant = new Date(`${String(utc).slice(0, 10)}T${String(utc).slice(11, 19) || "00:00:00"}Z`);
  let formatter = zoneFormatters.get(zone);
  if (!formatter) {
    try {
      formatter = new Intl.DateTimeFormat("en-GB", { hour: "numeric", hourCycle: "h23", timeZone: zone || "UTC" });
    } catch {
      formatter = new Intl.DateTimeFormat("en-GB", { hour: "numeric", hourCycle: "h23", timeZone: "UTC" });
    }
    zoneFormatters.set(zone, formatter);
  }
  return Number(formatter.format(instant)) % 24;
}

const ZONES = ["Zone 1 (50–60 %)", "Zone 2 (60–70 %)", "Zone 3 (70–80 %)", "Zone 4 (80–90 %)", "Zone 5 (≥ 90 %)"];

const ACTIVITY = {
  id: "activity",
  title: "Activity tracking",
  intro: "Movement, training and sleep of the selected subjects.",
  panels: [
    {
      id: "steps-per-day",
      title: "Steps per day",
      description: "Average steps per subject with step data that day.",
      chart: "bar",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT CAST(date_trunc('day', time) AS DATE) AS day, CAST(sum(count) AS DOUBLE) / count(DISTINCT subject_id) AS steps
          FROM steps WHERE ${q.where()} GROUP BY 1 ORDER BY 1`);
        const days = ctx.days();
        return { categories: days, series: seriesByCategory(rows, days, "day", [["steps", "Steps"]]), xFormat: fmt.day, format: fmt.int, yLabel: "steps" };
      },
    },
    {
      id: "active-minutes",
      title: "Active minutes",
      description: "Minutes with heart rate at or above 64 % of the subject's maximum, per subject and day.",
      chart: "line",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT day, avg(minutes) AS minutes FROM (
            SELECT h.subject_id, CAST(date_trunc('day', h.time) AS DATE) AS day,
                   count(DISTINCT CASE WHEN h.bpm >= 0.64 * ${MAX_HR} THEN date_trunc('minute', h.time) END) AS minutes
            FROM heart_rate h JOIN meta.subjects s ON s.subject_id = h.subject_id
            WHERE ${q.where("h")} GROUP BY 1, 2)
          GROUP BY day ORDER BY day`);
        const days = ctx.days();
        return { categories: days, series: seriesByCategory(rows, days, "day", [["minutes", "Active minutes"]]), xFormat: fmt.day, format: fmt.int, zero: true, yLabel: "minutes" };
      },
    },
    {
      id: "workouts-per-week",
      title: "Workouts per week",
      description: "Workouts by sport, per week starting Monday (partial weeks at the edges).",
      chart: "stackedBar",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT CAST(date_trunc('week', time) AS DATE) AS week, sport, count(*) AS workouts
          FROM workouts WHERE ${q.where()} GROUP BY 1, 2 ORDER BY 1, 2`);
        const weeks = weeksBetween(ctx.filters.from, ctx.filters.to);
        const sports = ["walk", "run", "ride", "swim", "strength", "hike", "yoga"];
        return { categories: weeks, series: pivot(rows, weeks, "week", "sport", "workouts", sports), xFormat: fmt.week, format: fmt.int, yLabel: "workouts" };
      },
    },
    {
      id: "hr-zones",
      title: "Time in heart-rate zones",
      description: "Minutes at each share of maximum heart rate, all selected subjects together.",
      chart: "donut",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          SELECT zone, count(*) AS minutes FROM (
            SELECT DISTINCT h.subject_id, date_trunc('minute', h.time) AS minute,
                   CASE WHEN h.bpm >= 0.9 * ${MAX_HR} THEN 5 WHEN h.bpm >= 0.8 * ${MAX_HR} THEN 4
                        WHEN h.bpm >= 0.7 * ${MAX_HR} THEN 3 WHEN h.bpm >= 0.6 * ${MAX_HR} THEN 2
                        WHEN h.bpm >= 0.5 * ${MAX_HR} THEN 1 ELSE 0 END AS zone
            FROM heart_rate h JOIN meta.subjects s ON s.subject_id = h.subject_id
            WHERE ${q.where("h")})
          WHERE zone > 0 GROUP BY zone ORDER BY zone`);
        const byZone = new Map(rows.map((r) => [num(r.zone), num(r.minutes)]));
        const total = rows.reduce((t, r) => t + num(r.minutes), 0);
        return {
          items: ZONES.map((name, i) => ({ label: name, value: byZone.get(i + 1) || 0, colour: i })),
          format: (v) => `${fmt.one(v / 60)} h`,
          centre: `${integer.format(total / 60)} h`,
          labelName: "Zone (% of maximum heart rate)",
          valueName: "Time",
        };
      },
    },
    {
      id: "sleep-stages",
      title: "Sleep duration and stages",
      description: "Average hours per subject and night, by stage; the stack is the time asleep.",
      chart: "stackedBar",
      async load(ctx) {
        const q = ctx.sql();
        const rows = await ctx.query(q, `
          WITH ${sleepNights(q)},
          subjects AS (SELECT night, count(*) AS subjects FROM chosen GROUP BY night)
          SELECT s.night, s.stage, sum(s.hours) / max(n.subjects) AS hours
          FROM stages s
          JOIN chosen c ON c.subject_id = s.subject_id AND c.night = s.night AND c.source = s.source
          JOIN subjects n ON n.night = s.night
          WHERE s.stage IN ('deep', 'light', 'rem', 'asleep')
          GROUP BY 1, 2 ORDER BY 1, 2`);
        const days = ctx.days();
        const series = pivot(rows, days, "night", "stage", "hours", ["deep", "light", "rem", "asleep"]).map((s) =>
          s.name === "Rem" ? { ...s, name: "REM" } : s.name === "Asleep" ? { ...s, name: "Asleep (no stages)" } : s,
        );
        return { categories: days, series, xFormat: fmt.day, format: fmt.hours };
      },
    },
  ],
};

const VIEWS = [OVERVIEW, PROGRESSION, NUTRITION, ACTIVITY];

// ---------------------------------------------------------------------------------------------
// Page state

const $ = (id) => document.getElementById(id);

const state = {
  view: "overview",
  filters: { from: "", to: "", group: "", subject: "" },
  generation: 0,
  timer: null,
  dataRange: null,
  // "schema.table" of the meta, system and reference tables the session has; null if unknown.
  tables: null,
};

function hasTable(name) {
  return state.tables === null || state.tables.has(name);
}

/** The first catalog table the SQL names that the caller's session does not have. */
function missingTable(sql) {
  for (const [, schema, table] of sql.matchAll(/\b(meta|system|reference)\.(\w+)/g)) {
    if (!hasTable(`${schema}.${table}`)) return `${schema}.${table}`;
  }
  return null;
}

function readHash() {
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const params = new URLSearchParams(search || "");
  const day = /^\d{4}-\d{2}-\d{2}$/;
  return {
    view: VIEWS.some((v) => v.id === path) ? path : "overview",
    filters: {
      from: day.test(params.get("from") || "") ? params.get("from") : "",
      to: day.test(params.get("to") || "") ? params.get("to") : "",
      group: /^\d+$/.test(params.get("group") || "") ? params.get("group") : "",
      subject: /^\d+$/.test(params.get("subject") || "") ? params.get("subject") : "",
    },
  };
}

function hashOf(view, filters) {
  const params = new URLSearchParams();
  for (const key of ["from", "to", "group", "subject"]) if (filters[key]) params.set(key, filters[key]);
  return `#/${view}?${params}`;
}

function announce(text, failed = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("failed", failed);
}

// ---------------------------------------------------------------------------------------------
// Login

function showLogin(message) {
  stopTimer();
  state.generation++;
  $("app-view").hidden = true;
  $("session").hidden = true;
  $("login-view").hidden = false;
  const error = $("login-error");
  error.hidden = !message;
  error.textContent = message || "";
  $(($("login-org").value ? "login-email" : "login-org")).focus();
}

async function submitLogin(event) {
  event.preventDefault();
  const org = $("login-org").value.trim();
  const email = $("login-email").value.trim();
  const password = $("login-password").value;
  const error = $("login-error");
  if (!email || !password) {
    error.hidden = false;
    error.textContent = "Enter your email and password.";
    (!email ? $("login-email") : $("login-password")).focus();
    return;
  }
  const button = $("login-submit");
  button.disabled = true;
  try {
    await api.login(org, email, password);
    sessionStorage.setItem("healthai.dashboard.user", email);
    $("login-password").value = "";
    await startApp();
  } catch (e) {
    error.hidden = false;
    error.textContent = e.status === 401 || e.status === 403 ? "The organization, email or password is not right." : e.message;
    $("login-password").focus();
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  await api.logout();
  sessionStorage.removeItem("healthai.dashboard.user");
  showLogin("You are logged out.");
}

// ---------------------------------------------------------------------------------------------
// Filters

async function loadFilterOptions() {
  const groups = await api.query("SELECT group_id, name FROM meta.groups ORDER BY name").catch(() => []);
  const select = $("f-group");
  select.replaceChildren(new Option("All groups", ""));
  for (const g of groups) select.appendChild(new Option(g.name, String(g.group_id)));
  select.disabled = groups.length === 0;

  if (state.tables === null) {
    // Roles see different schemas (system.* only for whole-organization readers): panels whose
    // tables are absent say so without sending a query bound to fail.
    const tables = await api
      .query("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('meta', 'system', 'reference')")
      .catch(() => null);
    if (tables) state.tables = new Set(tables.map((t) => `${t.table_schema}.${t.table_name}`));
  }

  if (!state.dataRange) {
    // The period ends on the last day with data, so a fresh login shows something.
    const [range] = await api
      .query(`SELECT CAST(min(time) AS DATE) AS first_day, CAST(max(time) AS DATE) AS last_day FROM (
                SELECT time FROM heart_rate UNION ALL SELECT time FROM steps UNION ALL SELECT time FROM meals)`)
      .catch(() => [{}]);
    const today = new Date().toISOString().slice(0, 10);
    state.dataRange = { first: range.first_day ? isoDay(range.first_day) : null, last: range.last_day ? isoDay(range.last_day) : today };
  }
}

async function loadSubjects() {
  const params = state.filters.group ? [Number(state.filters.group)] : [];
  const where = state.filters.group ? "WHERE subject_id IN (SELECT subject_id FROM meta.group_members WHERE group_id = $1)" : "";
  const subjects = await api
    .query(`SELECT subject_id, coalesce(display_name, pseudonym) AS name FROM meta.subjects ${where} ORDER BY pseudonym`, params)
    .catch(() => []);
  const select = $("f-subject");
  select.replaceChildren(new Option(subjects.length ? "All subjects" : "No subjects", ""));
  for (const s of subjects) select.appendChild(new Option(s.name, String(s.subject_id)));
  if (state.filters.subject && !subjects.some((s) => String(s.subject_id) === state.filters.subject)) state.filters.subject = "";
  select.value = state.filters.subject;
}

// The default period: up to DEFAULT_DAYS whole days, the first and last day with data left out
// because they are usually partial (today, or the edges of an imported history).
function defaultRange(filters) {
  const { first: firstData, last: lastData } = state.dataRange;
  const whole = firstData && addDays(firstData, 2) <= lastData;
  const last = whole ? addDays(lastData, -1) : lastData;
  let first = addDays(last, -(DEFAULT_DAYS - 1));
  if (firstData && (whole ? addDays(firstData, 1) : firstData) > first) first = whole ? addDays(firstData, 1) : firstData;
  if (!filters.to) filters.to = last;
  if (!filters.from) filters.from = filters.to === last ? first : addDays(filters.to, -(DEFAULT_DAYS - 1));
  if (filters.from > filters.to) [filters.from, filters.to] = [filters.to, filters.from];
}

function showFilters() {
  $("f-from").value = state.filters.from;
  $("f-to").value = state.filters.to;
  $("f-group").value = state.filters.group;
  $("f-subject").value = state.filters.subject;
}

async function filtersChanged(event) {
  const from = $("f-from").value;
  const to = $("f-to").value;
  if (!from || !to || from > to) {
    announce("The start date must be on or before the end date.", true);
    return;
  }
  const groupChanged = event && event.target.id === "f-group";
  state.filters = { from, to, group: $("f-group").value, subject: $("f-subject").value };
  if (groupChanged) await loadSubjects();
  history.replaceState(null, "", hashOf(state.view, state.filters));
  renderView();
}

// ---------------------------------------------------------------------------------------------
// Tabs (roving tabindex: one tab stop, arrows move between tabs)

function setupTabs() {
  const list = $("tabs");
  const tabs = [...list.querySelectorAll('[role="tab"]')];
  list.addEventListener("keydown", (event) => {
    const current = tabs.indexOf(document.activeElement);
    if (current < 0) return;
    const next = { ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const tab = tabs[(next + tabs.length) % tabs.length];
    tab.focus();
    selectView(tab.dataset.view);
  });
  for (const tab of tabs) tab.addEventListener("click", () => selectView(tab.dataset.view));
}

function selectView(view) {
  if (view === state.view && location.hash.startsWith(`#/${view}`)) return;
  location.hash = hashOf(view, state.filters);
}

function markTabs() {
  for (const tab of document.querySelectorAll('#tabs [role="tab"]')) {
    const selected = tab.dataset.view === state.view;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected) $("view").setAttribute("aria-labelledby", tab.id);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

function unavailable(error) {
  // A table the caller may not read is absent from their session: the planner says so.
  return error && (error.status === 403 || /not found|does not exist|doesn't exist|permission|not allowed|forbidden/i.test(error.message));
}

function panelShell(parent, panel, headingLevel = "h2") {
  const section = document.createElement("section");
  section.className = "panel";
  section.id = `panel-${panel.id}`;
  section.dataset.panel = panel.id;
  section.dataset.state = "loading";
  section.setAttribute("aria-labelledby", `${section.id}-title`);
  section.setAttribute("aria-busy", "true");
  const heading = document.createElement(headingLevel);
  heading.id = `${section.id}-title`;
  heading.textContent = panel.title;
  section.appendChild(heading);
  if (panel.description) {
    const p = document.createElement("p");
    p.className = "description";
    p.textContent = panel.description;
    section.appendChild(p);
  }
  const host = document.createElement("div");
  host.className = "chart-host";
  section.appendChild(host);
  parent.appendChild(section);
  return section;
}

function kpiShell(parent, kpi) {
  const card = document.createElement("section");
  card.className = "kpi";
  card.dataset.kpi = kpi.id;
  card.dataset.state = "loading";
  card.setAttribute("aria-labelledby", `kpi-${kpi.id}-title`);
  const h = document.createElement("h2");
  h.id = `kpi-${kpi.id}-title`;
  h.textContent = kpi.title;
  const value = document.createElement("p");
  value.className = "value";
  value.textContent = "…";
  const detail = document.createElement("p");
  detail.className = "detail";
  card.append(h, value, detail);
  parent.appendChild(card);
  return card;
}

function context(generation) {
  const memo = new Map();
  const ctx = {
    filters: { ...state.filters },
    sql: () => new Sql(ctx.filters),
    days: () => daysBetween(ctx.filters.from, ctx.filters.to),
    query: (q, sql) => {
      if (generation !== state.generation) return Promise.reject(new Error("superseded"));
      const missing = missingTable(sql);
      if (missing) return Promise.reject(new api.ApiError(404, `table ${missing} not found in your session`));
      return api.query(sql.replace(/\n\s+/g, "\n"), q.params);
    },
    shared: (key, load) => {
      if (!memo.has(key)) memo.set(key, load(ctx));
      return memo.get(key);
    },
  };
  return ctx;
}

function buildView(view) {
  const root = $("view");
  root.replaceChildren();
  const h1 = document.createElement("h1");
  h1.textContent = view.title;
  h1.id = "view-title";
  const intro = document.createElement("p");
  intro.className = "intro";
  intro.textContent = view.intro;
  root.append(h1, intro);
  if (view.kpis) {
    const kpis = document.createElement("div");
    kpis.className = "kpis";
    kpis.setAttribute("role", "group");
    kpis.setAttribute("aria-label", "Key figures");
    view.kpis.forEach((k) => kpiShell(kpis, k));
    root.appendChild(kpis);
  }
  const panels = document.createElement("div");
  panels.className = "panels";
  view.panels.forEach((p) => panelShell(panels, p));
  root.appendChild(panels);
  root.dataset.view = view.id;
}

async function loadKpi(kpi, ctx, generation) {
  const card = document.querySelector(`[data-kpi="${kpi.id}"]`);
  try {
    const result = await kpi.load(ctx);
    if (generation !== state.generation) return;
    card.querySelector(".value").textContent = result.value;
    card.querySelector(".detail").textContent = result.detail || "";
    card.classList.remove("good", "bad", "unavailable");
    if (result.tone) card.classList.add(result.tone);
    card.dataset.state = "ready";
  } catch (error) {
    if (generation !== state.generation || error instanceof api.LoginRequired) return;
    card.classList.add("unavailable");
    card.querySelector(".value").textContent = unavailable(error) ? "Not available" : "Could not load";
    card.querySelector(".detail").textContent = unavailable(error) ? `Not for your role: ${error.message}.` : error.message;
    card.dataset.state = unavailable(error) ? "unavailable" : "failed";
  }
}

async function loadPanel(panel, ctx, generation) {
  const section = document.querySelector(`[data-panel="${panel.id}"]`);
  const host = section.querySelector(".chart-host");
  section.classList.add("loading");
  const focused = host.contains(document.activeElement);
  try {
    const spec = await panel.load(ctx);
    if (generation !== state.generation) return;
    section.hidden = false;
    const figure = charts[panel.chart](host, { title: panel.title, ...spec });
    drawn.set(panel.id, { chart: panel.chart, spec: { title: panel.title, ...spec }, width: host.clientWidth });
    section.dataset.state = Number(figure.getAttribute("data-points")) > 0 ? "ready" : "empty";
    if (focused) host.querySelector("svg")?.focus();
  } catch (error) {
    if (generation !== state.generation || error instanceof api.LoginRequired) return;
    const note = document.createElement("p");
    if (unavailable(error)) {
      // Hidden for roles without the table; a note says why, for those who look.
      note.className = "note";
      note.textContent = `Not available for your role: ${error.message}.`;
      section.dataset.state = "unavailable";
    } else {
      note.className = "note failure";
      note.textContent = `This chart could not be loaded: ${error.message}`;
      section.dataset.state = "failed";
    }
    host.replaceChildren(note);
  } finally {
    if (generation === state.generation) {
      section.classList.remove("loading");
      section.removeAttribute("aria-busy");
    }
  }
}

// What each panel of the view last drew, to draw it again at a new width without a query.
const drawn = new Map();

function redrawAtNewWidths() {
  for (const [id, last] of drawn) {
    const host = document.querySelector(`[data-panel="${id}"] .chart-host`);
    if (!host || host.clientWidth === last.width || !host.querySelector("figure")) continue;
    charts[last.chart](host, last.spec);
    last.width = host.clientWidth;
  }
}

async function renderView({ rebuild = true } = {}) {
  const view = VIEWS.find((v) => v.id === state.view);
  const generation = ++state.generation;
  markTabs();
  document.title = `${view.title} · HealthAI dashboard`;
  if (rebuild || $("view").dataset.view !== view.id) {
    drawn.clear();
    buildView(view);
  }
  $("view").dataset.loaded = "false";
  announce(`Loading ${view.title.toLowerCase()}…`);
  const ctx = context(generation);
  const jobs = [...(view.kpis || []).map((k) => loadKpi(k, ctx, generation)), ...view.panels.map((p) => loadPanel(p, ctx, generation))];
  await Promise.allSettled(jobs);
  if (generation !== state.generation) return;
  const failed = document.querySelectorAll('#view [data-state="failed"]').length;
  $("view").dataset.loaded = "true";
  announce(
    failed ? `${failed} panel${failed === 1 ? "" : "s"} could not be loaded · ${clock.format(new Date())}` : `Updated ${clock.format(new Date())}`,
    failed > 0,
  );
}

// ---------------------------------------------------------------------------------------------
// Auto-refresh

function stopTimer() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

function setAutoRefresh(on) {
  stopTimer();
  sessionStorage.setItem(STATE_KEY, on ? "on" : "off");
  if (on) {
    state.timer = setInterval(() => {
      if (document.visibilityState === "visible" && !$("app-view").hidden) renderView({ rebuild: false });
    }, REFRESH_SECONDS * 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// Start

async function route() {
  if ($("app-view").hidden) return;
  const { view, filters } = readHash();
  const groupChanged = filters.group !== state.filters.group;
  defaultRange(filters);
  state.view = view;
  state.filters = filters;
  if (groupChanged || $("f-subject").options.length <= 1) await loadSubjects();
  showFilters();
  const canonical = hashOf(view, state.filters);
  if (location.hash !== canonical) history.replaceState(null, "", canonical);
  renderView();
}

async function startApp() {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("session").hidden = false;
  $("who").textContent = sessionStorage.getItem("healthai.dashboard.user") || "";
  announce("Loading…");
  await loadFilterOptions();
  state.filters.group = null; // forces the subject list to load for the hash's group
  const auto = sessionStorage.getItem(STATE_KEY) !== "off";
  $("f-auto").checked = auto;
  setAutoRefresh(auto);
  await route();
}

function init() {
  api.whenLoginRequired(() => showLogin("Your session has ended; please log in again."));
  $("login-form").addEventListener("submit", submitLogin);
  $("logout").addEventListener("click", logout);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const id of ["f-group", "f-subject", "f-from", "f-to"]) $(id).addEventListener("change", filtersChanged);
  $("f-auto").addEventListener("change", (e) => {
    setAutoRefresh(e.target.checked);
    announce(e.target.checked ? `Auto-refresh on: every ${REFRESH_SECONDS} seconds.` : "Auto-refresh off.");
  });
  $("refresh-now").addEventListener("click", () => renderView({ rebuild: false }));
  $("skip-link").addEventListener("click", (e) => {
    e.preventDefault();
    const target = $("app-view").hidden ? $("login-org") : $("view");
    target.focus();
  });
  setupTabs();
  window.addEventListener("hashchange", route);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(redrawAtNewWidths, 200);
  });
  if (api.isLoggedIn()) startApp();
  else showLogin();
}

init();
