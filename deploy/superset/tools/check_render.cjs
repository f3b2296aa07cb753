// Renders the adjoin dashboard in headless Chromium and checks what the API check
// cannot: that every chart draws (no error, no "No results"), and that the query
// the 6.1 frontend builds from each chart's params equals the chart's saved
// query_context (written by tools/gen_bundle.py), so the API, reports and the
// dashboard all ask the same question.
//
//   NODE_PATH=/path/to/node_modules node check_render.cjs [BASE_URL] [USER] [PASSWORD] [SCREENSHOT.png]
//
// Needs npm `playwright-core` and a Chromium (Debian: apt-get install chromium;
// CHROMIUM=/path overrides /usr/bin/chromium). Exits non-zero on any failure.
const { chromium } = require('playwright-core');

const BASE = (process.argv[2] || 'http://127.0.0.1:8088').replace(/\/$/, '');
const USER = process.argv[3] || 'admin';
const PASSWORD = process.argv[4] || 'admin';
const SHOT = process.argv[5] || '';

// Keys of a query object that the frontend fills from the dashboard's state rather
// than from the chart: `time_range` is the dashboard's Time range filter (by default
// the same window as the charts' own), the others are URL and layout state.
const VOLATILE = new Set(['time_range', 'url_params', 'custom_params', 'custom_form_data',
  'applied_time_extras']);

function normQuery(q) {
  const out = {};
  for (const [k, v] of Object.entries(q).sort(([a], [b]) => a.localeCompare(b))) {
    if (!VOLATILE.has(k)) out[k] = v;
  }
  return out;
}

function diff(a, b, path = '') {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    return a.flatMap((x, i) => diff(x, b[i], `${path}[${i}]`));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => diff(a[k], b[k], `${path}.${k}`));
  }
  return [`${path}: frontend ${JSON.stringify(a)} != saved ${JSON.stringify(b)}`];
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  let failures = 0;
  try {
    // Taller than the whole dashboard, so that DASHBOARD_VIRTUALIZATION renders
    // every chart at once. (A fullPage screenshot of a taller page resizes the
    // viewport, and the dashboard then re-mounts its charts.)
    const page = await browser.newPage({ viewport: { width: 1600, height: 5000 } });
    const sent = new Map(); // slice_id -> request body
    page.on('request', (req) => {
      if (req.method() === 'POST' && req.url().includes('/api/v1/chart/data')) {
        try {
          const body = JSON.parse(req.postData());
          sent.set(body.form_data.slice_id, body);
        } catch (e) { /* not JSON */ }
      }
    });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));

    await page.goto(`${BASE}/login/`);
    await page.fill('input[name="username"], #username', USER);
    await page.fill('input[name="password"], #password', PASSWORD);
    await Promise.all([
      page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 60000 }),
      page.keyboard.press('Enter'),
    ]);

    const api = async (path) => (await page.request.get(`${BASE}${path}`)).json();
    const charts = (await api('/api/v1/dashboard/adjoin/charts')).result;

    await page.goto(`${BASE}/superset/dashboard/adjoin/?standalone=1`);
    // Wait until every chart has asked for its data and no spinner is left.
    const deadline = Date.now() + 120000;
    while (Date.now() < deadline) {
      const loading = await page.locator('[data-test="loading-indicator"], .loading').count();
      if (sent.size >= charts.length && loading === 0) break;
      await page.waitForTimeout(500);
    }
    await page.waitForTimeout(2000);
    if (process.env.CHECK_RENDER_DUMP) {
      require('fs').writeFileSync(process.env.CHECK_RENDER_DUMP,
        JSON.stringify(Object.fromEntries(sent), null, 1));
    }

    for (const chart of charts.sort((a, b) => a.id - b.id)) {
      const name = `${String(chart.id).padStart(3)} ${chart.form_data.viz_type.padEnd(24)} ${chart.slice_name}`;
      const holder = page.locator(`[data-test-chart-id="${chart.id}"]`).first();
      const problems = [];
      if (await holder.count() === 0) {
        problems.push('not on the page');
      } else {
        const text = await holder.innerText();
        for (const bad of ['No results', 'No data', 'Unexpected error', 'Error', 'error occurred']) {
          if (text.includes(bad)) problems.push(`shows "${bad}"`);
        }
        // What a drawn chart of each type has inside its container (the header
        // has SVG icons of its own, so look inside .chart-container only).
        const body = holder.locator('[data-test="chart-container"]').first();
        const viz = chart.form_data.viz_type;
        if (viz === 'table') {
          if (await body.locator('tbody tr').count() === 0) problems.push('table has no rows');
        } else if (viz === 'big_number_total') {
          if (!/\d/.test(await body.innerText())) problems.push('big number shows no number');
        } else if (await body.locator('canvas').count() === 0) {
          problems.push('no ECharts canvas');
        }
      }
      const request = sent.get(chart.id);
      if (!request) {
        problems.push('frontend sent no data request');
      } else {
        const saved = JSON.parse((await api(`/api/v1/chart/${chart.id}`)).result.query_context || 'null');
        if (!saved) {
          problems.push('no saved query_context');
        } else {
          const d = diff(request.queries.map(normQuery), saved.queries.map(normQuery), 'queries');
          if (d.length) problems.push(`query differs from saved query_context: ${d.slice(0, 6).join('; ')}`);
        }
      }
      if (problems.length) {
        failures += 1;
        console.log(`FAIL ${name}: ${problems.join('; ')}`);
      } else {
        console.log(`ok   ${name}: drawn, query = saved query_context`);
      }
    }
    if (SHOT) await page.screenshot({ path: SHOT });
    if (errors.length) {
      failures += 1;
      console.log(`FAIL page errors: ${errors.slice(0, 5).join(' | ')}`);
    }
    console.log(`${charts.length - failures} passed, ${failures} failed`);
  } finally {
    await browser.close();
  }
  process.exit(failures ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
