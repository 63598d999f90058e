/** A simulated home: devices from the catalog, their evolving attributes, and the rule it gets. */
import catalog from './device-catalog.json' with { type: 'json' };

export type SimValue = number | boolean | string;

export interface SimDevice {
  readonly deviceId: string;
  readonly type: keyof typeof catalog.types;
  readonly capabilities: string[];
  readonly state: Record<string, SimValue>;
}

/** The devices of a typical small home: a motion sensor, a light, a climate sensor, a door, a plug. */
export function simDevices(): SimDevice[] {
  const make = (deviceId: string, type: keyof typeof catalog.types, state: Record<string, SimValue>): SimDevice => ({
    deviceId,
    type,
    capabilities: Object.keys(catalog.types[type].attributes),
    state,
  });
  return [
    make('motion1', 'motion_sensor', { motion: false, illuminance: 30, battery: 97 }),
    make('light1', 'light', { on: false, brightness: 0, color_temp: 2700 }),
    make('climate1', 'climate_sensor', { temperature: 21.5, humidity: 45, pressure: 1013, battery: 88 }),
    make('door1', 'contact_sensor', { open: false, battery: 91 }),
    make('plug1', 'plug', { on: true, power: 35, energy: 1200 }),
  ];
}

/** "When the hall motion sensor sees motion and it is dark, turn the light on." */
export const simRule = {
  id: 'hall-light',
  name: 'Hall light on motion when dark',
  when: [{ type: 'attribute', device: 'motion1', attribute: 'motion', to: true }],
  if: [{ device: 'motion1', attribute: 'illuminance', op: '<', value: 50 }],
  then: [{ type: 'command', device: 'light1', name: 'set', params: { on: true, brightness: 60 } }],
};

/** Advances one sensor like a real one would and returns the attributes (and event) to report. */
export function nextReading(device: SimDevice, rand: () => number): { attributes: Record<string, SimValue>; event?: string } {
  const s = device.state;
  switch (device.type) {
    case 'motion_sensor': {
      // Occupancy changes now and then; most reports are illuminance updates.
      const toggled = rand() < 0.04;
      const motion = toggled ? !s.motion : Boolean(s.motion);
      const illuminance = Math.max(0, Math.round(Number(s.illuminance) + (rand() - 0.5) * 10));
      s.motion = motion;
      s.illuminance = illuminance;
      return { attributes: { motion, illuminance }, ...(toggled && motion ? { event: 'motion_detected' } : {}) };
    }
    case 'climate_sensor': {
      s.temperature = Math.round((Number(s.temperature) + (rand() - 0.5)) * 10) / 10;
      s.humidity = Math.min(100, Math.max(0, Math.round(Number(s.humidity) + (rand() - 0.5) * 4)));
      return { attributes: { temperature: s.temperature, humidity: s.humidity } };
    }
    case 'contact_sensor': {
      s.open = !s.open;
      return { attributes: { open: s.open }, event: s.open ? 'opened' : 'closed' };
    }
    case 'plug': {
      s.power = Math.max(0, Math.round(Number(s.power) + (rand() - 0.5) * 6));
      s.energy = Number(s.energy) + 1;
      return { attributes: { power: s.power, energy: s.energy } };
    }
    default:
      return { attributes: { ...s } };
  }
}

/** Applies a command the way the device would and returns the attributes it then reports. */
export function applyCommand(device: SimDevice, params: Record<string, SimValue>): Record<string, SimValue> {
  for (const [k, v] of Object.entries(params)) if (k in device.state) device.state[k] = v;
  return { ...device.state };
}
