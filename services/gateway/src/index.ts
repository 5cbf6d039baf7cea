export { createGatewayService, type GatewayService, type GatewayConfig } from './main.ts';
export { ROUTES, type Upstream } from './routes.ts';
export { gatewayService, gatewaySettings, DEFAULT_WEB_ROOT } from './module.ts';
