/**
 * Terminal view of the fleet's incidents for operators: reads maintenance.incidents from the
 * beginning (a throw-away consumer group, nothing committed) and prints the open incidents.
 * With --follow it keeps going: on a terminal the table is redrawn in place, otherwise every change
 * is printed as one line. `npm run alerts -- --help` for the options.
 */
import { configReader, createKafka, createLogger, createSchemaStore, createTopicCodec, readCommonConfig, runMain, startTopicReader, type IncidentRecord } from '@pitwall/common';
import { ANSI, PLAIN, USAGE, applyLatest, formatIncidentChange, formatIncidentTable, parseCliArgs, selectIncidents, type CliOptions } from './cli/format.js';
import { isIncidentOpen } from '@pitwall/common';

const CLEAR = '\x1b[H\x1b[2J';

runMain('alerts-cli', async () => {
  let opts: CliOptions;
  try {
    opts = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const c = configReader(process.env);
  const config = c.done(readCommonConfig(c, 'alerts-cli'));
  const log = createLogger({ service: 'alerts-cli', level: 'error', write: (l) => process.stderr.write(l + '\n') });
  const topic = config.topics.incidents;
  const codec = await createTopicCodec<IncidentRecord>(createSchemaStore(config.registryUrl, config.registryCredentials), topic, 'incident', 1);
  const tty = Boolean(process.stdout.isTTY) && !opts.json;
  const style = tty ? ANSI : PLAIN;
  const known = new Map<string, IncidentRecord>();
  let caughtUp = false;
  let redraw: NodeJS.Timeout | undefined;

  const render = (): void => {
    redraw = undefined;
    const now = Date.now();
    const shown = selectIncidents(known.values(), opts.all);
    const open = [...known.values()].filter(isIncidentOpen).length;
    const header = `${style.bold('Pitwall incidents')}  ${topic}  ${open} open, ${known.size} known  ${style.dim(new Date(now).toISOString().slice(11, 19))}  ${style.dim('Ctrl-C to stop')}`;
    process.stdout.write(`${CLEAR}${header}\n\n${formatIncidentTable(shown, now, style)}\n`);
  };
  const scheduleRender = (): void => {
    redraw ??= setTimeout(render, 200);
  };
  const onChange = (incident: IncidentRecord): void => {
    if (!caughtUp) return;
    if (tty) scheduleRender();
    else if (opts.json) process.stdout.write(JSON.stringify(incident) + '\n');
    else if (incident.last_change !== 'UPDATED') process.stdout.write(formatIncidentChange(incident) + '\n');
  };

  const reader = await startTopicReader(createKafka(config, log), {
    topic,
    groupIdPrefix: 'pitwall-alerts-cli',
    follow: opts.follow,
    log,
    async onBatch(batch) {
      for (const m of batch.messages) {
        if (m.value === null) {
          known.delete(m.key?.toString() ?? '');
          if (caughtUp && tty) scheduleRender();
          continue;
        }
        let incident: IncidentRecord;
        try {
          incident = await codec.decode(m.value);
        } catch (err) {
          log.error('undecodable incident record', { partition: batch.partition, offset: m.offset, err });
          continue;
        }
        if (applyLatest(known, incident)) onChange(incident);
      }
    },
  });
  await reader.caughtUp;
  caughtUp = true;

  if (tty) render();
  else if (opts.json) for (const i of selectIncidents(known.values(), opts.all)) process.stdout.write(JSON.stringify(i) + '\n');
  else process.stdout.write(formatIncidentTable(selectIncidents(known.values(), opts.all), Date.now()) + '\n');

  if (!opts.follow) {
    await reader.stop();
    process.exit(0);
  }
  // Ages move even when nothing changes.
  const tick = tty ? setInterval(render, 1000) : undefined;
  const stop = (): void => {
    if (tick) clearInterval(tick);
    if (redraw) clearTimeout(redraw);
    reader.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('could not leave Kafka cleanly', { err });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
});
