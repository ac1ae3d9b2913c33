// Runs a PLC directory (in memory) and a Personal Data Server (SQLite in a directory)
// on 127.0.0.1, for tests. Needs Node 22 (node_modules/.bin/node after install.sh).
//
//   node launch.mjs DATA_DIR
//
// Prints one JSON line {"pds": URL, "plc": URL} once both listen; stops on SIGTERM/SIGINT.
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { randomBytes } from 'node:crypto'

import { PDS, envToCfg, envToSecrets, readEnv } from '@atproto/pds'
import { Secp256k1Keypair } from '@atproto/crypto'
import plcServer from '@did-plc/server'

const { PlcServer, Database: PlcDatabase } = plcServer
const HOST = '127.0.0.1'

// Both servers call app.listen(port), which binds every interface; tests stay on loopback.
function loopbackOnly(app) {
  app.listen = (port) => http.createServer(app).listen(port, HOST)
}

// The PDS must know its port before it starts (it is part of its public URL).
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, HOST, () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

async function startPlc() {
  const plc = PlcServer.create({ db: PlcDatabase.mock(), port: 0 })
  loopbackOnly(plc.app)
  const server = await plc.start()
  return { plc, url: `http://${HOST}:${server.address().port}` }
}

async function startPds(dataDir, plcUrl) {
  const port = await freePort()
  const rotation = await Secp256k1Keypair.create({ exportable: true })
  Object.assign(process.env, {
    PDS_HOSTNAME: 'localhost',
    PDS_PORT: String(port),
    PDS_DEV_MODE: 'true',
    PDS_INVITE_REQUIRED: 'false',
    PDS_DATA_DIRECTORY: dataDir,
    PDS_BLOBSTORE_DISK_LOCATION: path.join(dataDir, 'blobs'),
    PDS_DID_PLC_URL: plcUrl,
    PDS_SERVICE_HANDLE_DOMAINS: '.test',
    PDS_JWT_SECRET: randomBytes(16).toString('hex'),
    PDS_ADMIN_PASSWORD: randomBytes(16).toString('hex'),
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: Buffer.from(await rotation.export()).toString('hex'),
    PDS_CRAWLERS: '',
    LOG_ENABLED: process.env.LOG_ENABLED ?? 'false',
  })
  const env = readEnv()
  const pds = await PDS.create(envToCfg(env), envToSecrets(env))
  loopbackOnly(pds.app)
  await pds.start()
  return { pds, url: `http://${HOST}:${port}` }
}

async function main() {
  const dataDir = process.argv[2]
  if (!dataDir) {
    console.error('usage: node launch.mjs DATA_DIR')
    process.exit(2)
  }
  const { plc, url: plcUrl } = await startPlc()
  const { pds, url: pdsUrl } = await startPds(path.resolve(dataDir), plcUrl)
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await pds.destroy()
    await plc.destroy()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.stdout.write(JSON.stringify({ pds: pdsUrl, plc: plcUrl }) + '\n')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
