// The web app's main loop in headless Chromium (Debian's, driven by playwright-core).
// Usage: node main_loop.mjs <base url> <config json>; prints one JSON line of results.
import { launch, runScenario, scriptArgs, signIn as signInPage } from "./harness.mjs";

const { base, cfg } = scriptArgs();
const out = { steps: [] };
const step = (name, extra = {}) => out.steps.push({ name, t: Date.now(), ...extra });

const browser = await launch();
const dialogs = [];
async function signIn(email) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });  // an alert() would mean XSS
  const cspErrors = [];
  page.on("console", (m) => { if (m.type() === "error") cspErrors.push(m.text()); });
  await signInPage(page, base, email, cfg.password);
  return { ctx, page, cspErrors };
}

await runScenario(browser, out, async () => {
  // 1. operator: ask a diagnostic question, see streamed findings
  const op = await signIn(cfg.operator);
  step("operator signed in");
  await op.page.getByLabel("Your question").fill(cfg.question);
  const sent = Date.now();
  await op.page.getByRole("button", { name: "Send" }).click();
  await op.page.locator("[data-testid=progress]").last().filter({ hasText: /\S/ }).waitFor({ timeout: 60000 });
  out.first_delta_ms = Date.now() - sent;
  await op.page.locator(".finding").first().waitFor({ timeout: 120000 });
  out.answer_ms = Date.now() - sent;
  out.findings = await op.page.locator(".finding").count();
  out.evidence = await op.page.locator(".evidence").count();
  step("findings shown", { findings: out.findings });
  if (cfg.screenshots) await op.page.screenshot({ path: cfg.screenshots + "/chat.png", fullPage: true });

  // 2. operator asks for a restart: a pending action card, no approve button for them
  await op.page.getByLabel("Your question").fill(cfg.write_question);
  await op.page.getByRole("button", { name: "Send" }).click();
  const card = op.page.locator(".action-card").last();
  await card.waitFor({ timeout: 120000 });
  out.action_text = await card.innerText();
  out.operator_approve_buttons = await card.getByRole("button", { name: /Approve/ }).count();
  out.action_id = await card.getAttribute("data-action");
  step("action proposed", { action: out.action_id });

  // 3. viewer: pending approvals show no approve button
  const viewer = await signIn(cfg.viewer);
  await viewer.page.getByRole("button", { name: "Approvals" }).click();
  await viewer.page.waitForTimeout(800);
  out.viewer_approve_buttons = await viewer.page.getByRole("button", { name: /Approve/ }).count();

  // 4. admin approves: Approve… opens the confirmation; Cancel runs nothing; Run it runs it
  const admin = await signIn(cfg.admin);
  await admin.page.getByRole("button", { name: "Approvals" }).click();
  const adminCard = admin.page.locator(`.action-card[data-action="${out.action_id}"]`);
  await adminCard.waitFor({ timeout: 20000 });
  await adminCard.getByRole("button", { name: /Approve/ }).click();
  await admin.page.getByRole("button", { name: "Cancel" }).click();
  out.after_cancel = await adminCard.innerText();
  await adminCard.getByRole("button", { name: /Approve/ }).click();
  await admin.page.getByRole("button", { name: "Run it" }).click();
  await adminCard.getByText(/Action (executed|failed)/).waitFor({ timeout: 120000 });
  out.approved_text = await adminCard.innerText();
  step("approved");
  await admin.page.getByRole("button", { name: "Audit" }).click();
  await admin.page.locator("#audit-rows tr").first().waitFor({ timeout: 20000 });
  out.audit_text = await admin.page.locator("#audit-rows").innerText();
  await admin.page.getByRole("button", { name: "Executions" }).click();
  await admin.page.locator("#execution-rows tr").first().waitFor({ timeout: 20000 });
  out.executions_text = await admin.page.locator("#execution-rows").innerText();

  // 5. server list: the XSS tag renders as text, live status, detail with grains
  await admin.page.getByRole("button", { name: "Servers" }).click();
  await admin.page.locator("#server-rows tr").first().waitFor({ timeout: 20000 });
  out.servers_text = await admin.page.locator("#server-rows").innerText();
  out.injected_img = await admin.page.locator("#server-rows img, #server-detail img").count();
  if (cfg.screenshots) await admin.page.screenshot({ path: cfg.screenshots + "/servers.png", fullPage: true });
  await admin.page.getByRole("button", { name: cfg.xss_minion }).click();
  await admin.page.locator("#server-detail pre").waitFor({ timeout: 20000 });
  out.detail_text = await admin.page.locator("#server-detail").innerText();
  out.injected_img += await admin.page.locator("#server-detail img").count();
  out.dialogs = dialogs;
  out.csp_errors = [...op.cspErrors, ...admin.cspErrors].filter((t) => /Content Security Policy/.test(t));
});
