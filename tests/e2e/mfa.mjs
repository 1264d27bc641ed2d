// Two-factor enrolment and sign-in in headless Chromium. The TOTP codes come from the test
// (pyotp): this script prints {"need_code": "<secret>", "for": "confirm"|"login"} and reads one
// line with the code from stdin. Ends with one JSON line of results.
// Usage: node mfa.mjs <base url> <config json: email, password, screenshots?>
import readline from "node:readline";
import { fillSignIn, launch, runScenario, scriptArgs } from "./harness.mjs";

const { base, cfg } = scriptArgs();
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function askCode(secret, purpose) {
  console.log(JSON.stringify({ need_code: secret, for: purpose }));
  const { value } = await lines.next();
  return String(value).trim();
}

const browser = await launch();
const out = { dialogs: [], console_errors: [] };
await runScenario(browser, out, async () => {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await ctx.newPage();
  page.on("dialog", (d) => { out.dialogs.push(d.message()); d.dismiss(); });
  page.on("console", (m) => {  // a refused sign-in (401) is logged by Chromium as a failed load: expected
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) out.console_errors.push(m.text());
  });
  const signIn = () => fillSignIn(page, cfg.email, cfg.password);
  await page.goto(base + "/ui/");
  await signIn();
  await page.getByText(cfg.email + " (").waitFor({ timeout: 20000 });

  // enrol: secret, otpauth URI and recovery codes shown; confirm with the current code
  await page.getByRole("button", { name: "Security" }).click();
  await page.getByRole("button", { name: "Set up two-factor authentication" }).click();
  await page.getByLabel("Secret").waitFor();
  const secret = await page.getByLabel("Secret").inputValue();
  out.uri = await page.getByLabel("Authenticator link (otpauth)").inputValue();
  out.recovery_codes = await page.getByRole("list", { name: "Recovery codes" }).getByRole("listitem").count();
  if (cfg.screenshots) await page.screenshot({ path: cfg.screenshots + "/mfa-enrol.png", fullPage: true });
  await page.getByLabel("Code from the app").fill(await askCode(secret, "confirm"));
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.getByText("Two-factor authentication is on").first().waitFor({ timeout: 10000 });
  out.enrolled_text = await page.locator("#mfa-state").innerText();
  out.secret_cleared = (await page.locator("#mfa-secret").inputValue()) === "";

  // sign out, sign in again: the password alone is refused with the code step shown
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("E-mail").waitFor({ timeout: 20000 });
  await signIn();
  await page.getByLabel("Two-factor code").waitFor({ timeout: 10000 });
  out.mfa_prompt = await page.locator("#alert").innerText();
  out.signed_in_without_code = await page.getByText(cfg.email + " (").count();
  await page.getByLabel("Password", { exact: true }).fill(cfg.password);
  await page.getByLabel("Two-factor code").fill(await askCode(secret, "login"));
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText(cfg.email + " (").waitFor({ timeout: 20000 });
  out.signed_in = true;
});
process.exit(0);
