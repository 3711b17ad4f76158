/**
 * The common first step of every `/v1/teams/{team}/…` route: authenticate, check the key's team
 * and role, then find the team. Order matters: 401 before 403 before 404, so a caller without
 * rights learns nothing about which teams exist.
 */
import type { AppContext } from '../app-context.js';
import { authorizeTeam, type Principal, type Role } from '../auth/principal.js';
import type { KiteRequest } from '../http/types.js';

export interface TeamAccess {
  readonly principal: Principal;
  readonly team: string;
  readonly teamId: number;
}

export async function teamAccess(ctx: AppContext, request: KiteRequest, roles: readonly Role[], query?: URLSearchParams): Promise<TeamAccess> {
  const principal = await ctx.auth.authenticate(request.headers, query);
  const team = request.params['team'] ?? '';
  authorizeTeam(principal, team, roles);
  const teamId = await ctx.teams.require(team);
  return { principal, team, teamId };
}
