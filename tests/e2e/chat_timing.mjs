// Browser side of bench/web_chat.py: sign in, then ask the same question N times, each in a
// new conversation, timing (in the page, performance.now) from pressing Send to the first
// streamed delta shown and to the complete answer. Prints one JSON line.
// Usage: node chat_timing.mjs <base url> <config json: email, password, question, runs>
import { launch, runScenario, scriptArgs, signIn } from "./harness.mjs";

const { base, cfg } = scriptArgs();
const browser = await launch();
const out = { runs: [] };
await runScenario(browser, out, async () => {
  const page = await (await browser.newContext()).newPage();
  await signIn(page, base, cfg.email, cfg.password);
  for (let i = 0; i < cfg.runs + 1; i++) {  // the first run warms up and is not counted
    // the previous answer is shown before its stream closes; Send is enabled again after that
    await page.locator("#send:not([disabled])").waitFor({ timeout: 60000 });
    const r = await page.evaluate((question) => new Promise((resolve) => {
      document.getElementById("new-chat").click();
      document.getElementById("chat-input").value = question;
      const box = document.getElementById("messages");
      let first = null;
      const t0 = performance.now();
      const timer = setTimeout(() => { obs.disconnect(); resolve({ timeout: true }); }, 120000);
      const obs = new MutationObserver(() => {
        const reply = box.querySelector("li.msg.assistant");
        if (!reply) return;
        const progress = reply.querySelector("[data-testid=progress]");
        if (first === null && progress && progress.textContent.trim()) first = performance.now() - t0;
        if (!reply.classList.contains("streaming")) {
          obs.disconnect(); clearTimeout(timer);
          resolve({ first_ms: first ?? performance.now() - t0, done_ms: performance.now() - t0,
                    findings: reply.querySelectorAll(".finding").length,
                    failed: reply.classList.contains("failed"),
                    error: document.getElementById("alert").textContent });
        }
      });
      obs.observe(box, { childList: true, subtree: true, characterData: true, attributes: true });
      document.getElementById("send").click();
    }), cfg.question);
    if (i > 0) out.runs.push(r);
  }
});
