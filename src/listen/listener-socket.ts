/**
 * What the broadcast hub needs from a listener's connection. `src/http/` adapts uWS WebSockets
 * to it; tests can use a plain object.
 */
export interface ListenerSocket {
  /**
   * Queues one text frame (UTF-8 bytes: encoded once by the hub and shared by every listener).
   * False when the frame was dropped (the hub then treats it as too slow).
   */
  send(frame: Uint8Array): boolean;
  /** Bytes waiting in this connection's send buffer. */
  bufferedAmount(): number;
  /** Runs fn with the socket corked, so frames sent inside it leave in one write. */
  cork(fn: () => void): void;
  /** Closes with a WebSocket close code; the hub forgets the listener right away. */
  end(code: number, reason: string): void;
}

export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TRY_AGAIN_LATER = 1013;
