// @ts-check
// The console's single page boots here: the live stream into the store, the views on the router,
// relative times kept current. State is in store.js, the stream in live.js, routing in router.js.
import { refreshRelativeTimes } from './dom.js';
import { renderFleet } from './fleet.js';
import { connect } from './live.js';
import { startRouter } from './router.js';
import { renderVehicle } from './vehicle.js';

setInterval(() => refreshRelativeTimes(), 15_000);
connect();
startRouter({ fleet: renderFleet, vehicle: renderVehicle });
