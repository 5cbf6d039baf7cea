export { createGatewayService, type GatewayService, type GatewayConfig } from './main.ts';
export { ROUTES, type Upstream } from './routes.ts';
