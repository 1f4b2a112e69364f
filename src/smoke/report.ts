// The result of a smoke run as plain data, and its human summary (one line per case, then the counts).
import {formatDuration} from '../log.js'

export type CaseStatus = 'passed' | 'failed' | 'skipped'

export interface CaseResult {
  readonly name: string
  readonly status: CaseStatus
  readonly durationMs: number
  /** Why it failed (expected vs got) or was skipped; for a pass, a detail such as the phase times. */
  readonly message?: string
  /** The start of the response body that made it fail. */
  readonly excerpt?: string
}

export interface PhaseTiming {
  /** resolve, env, spawn, load, warmup, total (serve's start-up phases, as in /metrics). */
  readonly name: string
  readonly ms: number
}

export interface SmokeReport {
  readonly modelUri?: string
  readonly modelDir?: string
  /** The registered model version a models:/ URI resolved to, when the URI named one. */
  readonly modelVersion?: string
  /** The server checked: the one mlserve started, or --url. */
  readonly url?: string
  readonly environment?: {readonly manager?: string; readonly key?: string; readonly detail?: string}
  readonly phases: readonly PhaseTiming[]
  readonly cases: readonly CaseResult[]
  readonly durationMs: number
  readonly summary: {readonly passed: number; readonly failed: number; readonly skipped: number}
}

export function summarize(cases: readonly CaseResult[]): SmokeReport['summary'] {
  const count = (status: CaseStatus) => cases.filter((result) => result.status === status).length
  return {passed: count('passed'), failed: count('failed'), skipped: count('skipped')}
}

const LABELS: Record<CaseStatus, string> = {passed: 'PASS', failed: 'FAIL', skipped: 'SKIP'}

/** The summary printed on stderr; its last line is `N passed, N failed, N skipped`. */
export function formatSummary(report: SmokeReport): string {
  const width = report.cases.reduce((widest, result) => Math.max(widest, result.name.length), 10)
  const lines = ['', `mlserve smoke${report.modelUri ? ` ${report.modelUri}` : ''}${report.url ? ` (${report.url})` : ''}`]
  for (const result of report.cases) {
    const duration = result.status === 'skipped' ? '-' : formatDuration(result.durationMs)
    const head = `  ${LABELS[result.status]}  ${result.name.padEnd(width)}  ${duration.padStart(7)}`
    if (result.status === 'failed') {
      lines.push(head)
      for (const line of (result.message ?? '').split('\n')) lines.push(`        ${line}`)
      if (result.excerpt) lines.push(`        response: ${result.excerpt.replaceAll('\n', '\n        ')}`)
    } else lines.push(result.message ? `${head}  ${result.message}` : head)
  }

  const {passed, failed, skipped} = report.summary
  lines.push(`${passed} passed, ${failed} failed, ${skipped} skipped`)
  return lines.join('\n') + '\n'
}

/** The --json document. */
export function toJson(report: SmokeReport): string {
  return JSON.stringify(
    {
      model: {uri: report.modelUri, dir: report.modelDir, version: report.modelVersion},
      url: report.url,
      environment: report.environment,
      startup: Object.fromEntries(report.phases.map((phase) => [phase.name, Math.round(phase.ms)])),
      cases: report.cases.map((result) => ({...result, durationMs: Math.round(result.durationMs)})),
      durationMs: Math.round(report.durationMs),
      summary: report.summary,
    },
    null,
    2,
  )
}
