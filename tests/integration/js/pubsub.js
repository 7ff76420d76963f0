// pubsub.js - mqtt.js over WebSocket through a sealing pair (test_listeners.py): subscribes on
// the second URL, publishes on the first, prints what arrives. Exit 0 once received, 1 on a
// failure or after 30 s. Usage: node pubsub.js ws://host:port/mqtt ws://host:port/mqtt
'use strict';
const mqtt = require('mqtt');

const [pubUrl, subUrl] = process.argv.slice(2);
const opts = { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10000 };
const fail = (why) => { console.error('mqtt.js: ' + why); process.exit(1); };
setTimeout(() => fail('timed out'), 30000).unref();

const sub = mqtt.connect(subUrl, { ...opts, clientId: 'js-sub' });
sub.on('error', (e) => fail('subscriber: ' + e.message));
sub.on('message', (topic, payload) => {
  console.log('received ' + payload.toString() + ' on ' + topic);
  sub.end(); // eslint-disable-line
  process.exit(0);
});
sub.on('connect', () => {
  sub.subscribe('js/#', { qos: 1 }, (err) => {
    if (err) fail('subscribe: ' + err.message);
    const pub = mqtt.connect(pubUrl, { ...opts, clientId: 'js-pub' });
    pub.on('error', (e) => fail('publisher: ' + e.message));
    pub.on('connect', () => {
      pub.publish('js/t', 'hello from mqtt.js', { qos: 1 }, (e) => {
        if (e) fail('publish: ' + e.message);
        pub.end();
      });
    });
  });
});
