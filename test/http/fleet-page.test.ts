/**
 * The fleet page in headless Chromium against the update server with 50
 * device agents speaking the real protocol and a running rollout (a
 * critical release: its canary confirmed, the second wave under way,
 * negotiated devices deferring): the devices and the rollout are shown,
 * Pause without the token is refused (page and database), Pause with it
 * pauses (page and database), a change made elsewhere (a resume by another
 * operator) shows up without a reload (server-sent events), and the page
 * works by keyboard and on a phone-sized screen. Screenshots go to
 * test-artifacts/ (gitignored); COAPFW_README_SCREENSHOT=1 also refreshes
 * docs/fleet-page.png, the README's copy.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithBinaries } from '../../interop/helpers.js';
import { CHROMIUM_MISSING, launchBrowser } from './browser.js';
import { startAgentFleet, type AgentFleet } from './agent-fleet.js';

const ARTIFACTS = join(import.meta.dirname, '../../test-artifacts');

describeWithBinaries('fleet page in Chromium', CHROMIUM_MISSING, () => {
  let fleet: AgentFleet;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    fleet = await startAgentFleet(50);
    browser = await launchBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      // The refused Pause is a 401 the browser logs as a failed load: expected, not a page error.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
  });
  afterAll(async () => {
    await browser?.close();
    await fleet?.close();
  });

  const rolloutState = () => page.locator(`#rollout-${fleet.rolloutId} [data-testid=rollout-state]`);

  it('shows the devices and the running rollout', async () => {
    await page.goto(fleet.http.url);
    await expect.poll(() => page.locator('#devices tbody tr').count()).toBe(50);
    await expect.poll(() => rolloutState().textContent()).toBe('running');
    await expect.poll(() => page.locator('#live-text').textContent()).toBe('live');
    expect(await page.locator('#s-devices').textContent()).toBe('50');
    expect(await page.locator(`#rollout-${fleet.rolloutId} .wave`).count()).toBe(2);
    expect(await page.locator(`#rollout-${fleet.rolloutId} svg.chart title`).textContent()).toMatch(/^Confirmed devices over time: \d+ of 50$/);
    // The negotiated devices deferred by an hour: they show the release offered, not installed.
    expect(await page.locator('tr[data-device-row="sensor-005"] td').nth(0).textContent()).toBe('0');
    expect(await page.locator('tr[data-device-row="sensor-001"] .badge').textContent()).toBe('confirmed');
    await page.waitForTimeout(300); // let the last redraw settle for the screenshot
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-page.png') });
  });

  it('opens a device history with the keyboard', async () => {
    await page.locator('button[data-device="sensor-001"]').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#device-h').textContent()).toBe('Device sensor-001');
    const history = await page.locator('#device-detail .history').textContent();
    for (const state of ['registered', 'downloading', 'installed', 'confirmed']) expect(history).toContain(state);
  });

  it('refuses Pause without the token', async () => {
    await page.locator(`#rollout-${fleet.rolloutId} button[data-action=pause]`).click();
    await expect.poll(() => page.locator('#notice').textContent()).toContain('Refused: the operator token is missing or wrong');
    expect((await fleet.store.getRollout(fleet.rolloutId))!.state).toBe('running');
    expect(await rolloutState().textContent()).toBe('running');
  });

  it('pauses with the token: the page and the database say paused', async () => {
    await page.getByLabel('Operator token').fill(fleet.token);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator(`#rollout-${fleet.rolloutId} button[data-action=pause]`).click();
    await expect.poll(() => rolloutState().textContent()).toBe('paused');
    expect(await page.locator(`#rollout-${fleet.rolloutId} .reason`).textContent()).toBe('paused by operator');
    expect((await fleet.store.getRollout(fleet.rolloutId))!).toMatchObject({ state: 'paused', pauseReason: 'paused by operator' });
    expect(await page.locator(`#rollout-${fleet.rolloutId} button[data-action=resume]`).count()).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-page-paused.png'), fullPage: true });
    // Another operator resumes (not through this page): it shows up here without a reload.
    await fleet.engine.resume(fleet.rolloutId, 'bob');
    await expect.poll(() => rolloutState().textContent(), { timeout: 10_000 }).toBe('running');
    if (process.env.COAPFW_README_SCREENSHOT === '1') await copyFile(join(ARTIFACTS, 'fleet-page.png'), join(import.meta.dirname, '../../docs/fleet-page.png'));
    expect(errors).toEqual([]);
  });

  it('fits a phone screen without sideways scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await expect.poll(() => page.locator('#devices tbody tr').count()).toBe(50);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-page-phone.png') });
  });
});
