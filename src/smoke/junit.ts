// A smoke report as JUnit XML: one <testsuite name="mlserve smoke">, one <testcase> per check.
import type {CaseResult, SmokeReport} from './report.js'

const SUITE = 'mlserve smoke'

/** Text safe inside XML: the five entities escaped, characters XML 1.0 forbids dropped. */
export function escapeXml(text: string, attribute = false): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replaceAll(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
  const escaped = clean
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;')
  return attribute ? escaped.replaceAll('\n', '&#10;').replaceAll('\r', '&#13;').replaceAll('\t', '&#9;') : escaped
}

const seconds = (ms: number) => (ms / 1000).toFixed(3)

function testcase(result: CaseResult): string {
  const open = `    <testcase name="${escapeXml(result.name, true)}" classname="${SUITE}" time="${seconds(result.durationMs)}"`
  if (result.status === 'passed') return `${open}/>`
  const message = result.message ?? ''
  if (result.status === 'skipped') return `${open}>\n      <skipped message="${escapeXml(message, true)}"/>\n    </testcase>`
  const text = result.excerpt ? `${message}\n\nresponse: ${result.excerpt}` : message
  const firstLine = message.split('\n')[0] ?? ''
  return `${open}>\n      <failure message="${escapeXml(firstLine, true)}" type="failure">${escapeXml(text)}</failure>\n    </testcase>`
}

export function toJunit(report: SmokeReport, timestamp = new Date()): string {
  const {summary} = report
  const tests = report.cases.length
  const properties = [
    ['model', report.modelUri],
    ['model.dir', report.modelDir],
    ['model.version', report.modelVersion],
    ['url', report.url],
    ['environment.key', report.environment?.key],
    ...report.phases.map((phase) => [`startup.${phase.name}.seconds`, seconds(phase.ms)] as const),
  ].filter((entry): entry is [string, string] => entry[1] !== undefined)
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${SUITE}" tests="${tests}" failures="${summary.failed}" errors="0" skipped="${summary.skipped}" time="${seconds(report.durationMs)}">`,
    `  <testsuite name="${SUITE}" tests="${tests}" failures="${summary.failed}" errors="0" skipped="${summary.skipped}" time="${seconds(report.durationMs)}" timestamp="${timestamp.toISOString().replace(/\.\d+Z$/, '')}">`,
    ...(properties.length > 0
      ? [
          '    <properties>',
          ...properties.map(([name, value]) => `      <property name="${escapeXml(name, true)}" value="${escapeXml(value, true)}"/>`),
          '    </properties>',
        ]
      : []),
    ...report.cases.map((result) => testcase(result)),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n')
}
